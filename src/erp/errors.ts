import { AppError, NotConnectedError } from '../errors.js'

/** One problem with one field, as the ERP agent words it (`errors[]` of its problem+json). */
export interface ErpFieldError {
  field: string
  message: string
}

/**
 * The ERP agent refused a create or an update (4xx other than 401/404/412/428/429): a field breaks
 * a rule of this ERP (422 `validation_failed`), a unique code is taken (409 `already_exists`,
 * with `existingId`), or the request was malformed. Retrying the same request cannot help; a
 * person (or the caller) must change it. Rendered as 422 problem+json if it reaches a route.
 */
export class ErpRefusedError extends AppError {
  override name = 'ErpRefusedError'
  /** The ERP's own per-field messages, one per problem. */
  readonly fieldErrors: ErpFieldError[]
  /** The agent's `detail`, a sentence for a person. */
  readonly erpDetail: string
  /** The agent's stable problem `code` (`validation_failed`, `already_exists`, …). */
  readonly erpCode: string
  readonly erpStatus: number
  /** With `already_exists`: the id of the ERP record that already has the code. */
  readonly existingId: string | undefined

  constructor(init: {
    erpStatus: number
    erpCode: string
    erpDetail: string
    fieldErrors: ErpFieldError[]
    existingId?: string | undefined
    what: string
  }) {
    const exists = init.erpCode === 'already_exists'
    const fields = init.fieldErrors.map((e) => e.message).join('; ')
    super(
      exists ? 409 : 422,
      exists ? 'erp_record_exists' : 'erp_refused',
      exists ? 'The ERP already has this record' : 'The ERP refused the change',
      `The ERP refused to ${init.what}: ${init.erpDetail}${fields ? ` (${fields})` : ''}` +
        (exists && init.existingId
          ? ` Link the existing ERP record ${init.existingId} instead.`
          : ' Correct the fields named in erpErrors and retry.'),
      {
        erpErrors: init.fieldErrors,
        erpCode: init.erpCode,
        erpStatus: init.erpStatus,
        ...(init.existingId !== undefined && { existingId: init.existingId }),
      },
    )
    this.fieldErrors = init.fieldErrors
    this.erpDetail = init.erpDetail
    this.erpCode = init.erpCode
    this.erpStatus = init.erpStatus
    this.existingId = init.existingId
  }
}

/** An update's If-Match version is no longer the record's version: re-read, merge, retry. */
export class ErpStaleVersionError extends AppError {
  override name = 'ErpStaleVersionError'
  /** The record's current version as the ERP reported it, when it did. */
  readonly currentVersion: number | null

  constructor(init: { id: string; expectedVersion: number; currentVersion: number | null }) {
    super(
      409,
      'erp_version_conflict',
      'The ERP record changed',
      `ERP record ${init.id} changed since version ${init.expectedVersion}` +
        `${init.currentVersion === null ? '' : ` (it is now at version ${init.currentVersion})`}. ` +
        'Re-read it, review the differences, and retry.',
      { currentVersion: init.currentVersion },
    )
    this.currentVersion = init.currentVersion
  }
}

/** The company has no ERP connection yet. */
export class ErpNotConnectedError extends NotConnectedError {
  override name = 'ErpNotConnectedError'
  constructor(companyId: string) {
    super(
      'erp',
      'erp_not_connected',
      'No ERP connection',
      `Company ${companyId} is not connected to an ERP agent. ` +
        `Connect it first: PUT /v1/companies/${companyId}/erp/connection with the agent's base URL and token.`,
    )
  }
}
