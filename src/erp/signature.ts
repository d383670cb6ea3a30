// The ERP agent's notifications are signed per Standard Webhooks; the scheme itself lives in the base.
export {
  newNotificationSecret,
  sign,
  signatureBytes,
  TIMESTAMP_TOLERANCE_SECONDS,
  verify,
  type VerifyFailure,
  type VerifyInput,
  type VerifyResult,
} from '../crypto/standard-webhooks.js'
