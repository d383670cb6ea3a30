import type { ColumnType } from 'kysely'

type Json<T> = ColumnType<T, string, string>
type Now = ColumnType<Date, Date | undefined, Date>

export const OnboardingSteps = ['company', 'users', 'projects', 'cost_codes', 'settings'] as const
export type OnboardingStep = (typeof OnboardingSteps)[number]

/** The last time each onboarding step of a company was asked: its options, its run, what it did. */
export interface OnboardingStepsTable {
  company_id: ColumnType<string, string, never>
  step: OnboardingStep
  status: 'in_progress' | 'done' | 'skipped'
  options: Json<Record<string, unknown>>
  run_id: string | null
  result: Json<Record<string, unknown> | null> | null
  updated_by: string
  updated_at: Now
}
