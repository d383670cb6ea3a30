// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

/** Top-level folders of src/ by layer (src/jobs is the job framework, below the domain that declares tasks). */
const DOMAIN = [
  'sync',
  'schedules',
  'inbox',
  'companies',
  'auth',
  'exports',
  'notify',
  'jobs',
  'financials',
  'onboarding',
  'timecards',
]
const APP = ['plugins', 'cli']
const CONNECTOR =
  'Connectors (src/procore, src/erp) know HTTP, auth, paging and payload formats, not the domain nor each other: ' +
  'the domain calls them through src/sync/sides.ts. ' +
  'Move what needs snapshots, runs, links, the inbox or record types into the domain.'

/**
 * Files matching `files` may not import the top-level folders `folders` of src/ (nor routes/, the app or the
 * server, which sit above everything in src/).
 */
function layer(files, folders, message) {
  const names = folders.filter((f) => f !== 'schemas').join('|')
  const contracts = folders.includes('schemas')
    ? [
        {
          regex: '^(\\.\\./)+schemas/',
          message: `${message} (API types may be imported as types)`,
          allowTypeImports: true,
        },
      ]
    : []
  return [
    {
      files,
      rules: {
        '@typescript-eslint/no-restricted-imports': [
          'error',
          {
            patterns: [
              ...contracts,
              { regex: `^(\\.\\./)+(${names})/`, message },
              {
                regex: '^(\\.\\./)+(routes/|app\\.js$|server\\.js$|tasks\\.js$)',
                message: `${message} (routes, the app and the server sit above)`,
              },
            ],
          },
        ],
      },
    },
  ]
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.data/', 'coverage/', '.tap/', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Fastify plugins and hooks are async by contract, with or without an await inside.
      '@typescript-eslint/require-await': 'off',
      // Prettier keeps code within 120 columns; this keeps strings and comments there too.
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Use an `as const` object instead of enum.' },
      ],
    },
  },
  // The direction of the house: routes → domain → connectors → base. Each layer imports only below itself.
  ...layer(['src/procore/**'], ['erp', 'schemas', ...DOMAIN, ...APP], CONNECTOR),
  ...layer(['src/erp/**'], ['procore', 'schemas', ...DOMAIN, ...APP], CONNECTOR),
  ...layer(
    ['src/db/**', 'src/http/**', 'src/crypto/**', 'src/api/**', 'src/config.ts', 'src/errors.ts', 'src/context.ts'],
    ['procore', 'erp', ...DOMAIN, ...APP],
    'The base (db, http, crypto, api, config, errors, context) is used by every layer and uses none of them.',
  ),
  ...layer(
    ['src/jobs/**'],
    ['procore', 'erp', 'schemas', ...DOMAIN.filter((f) => f !== 'jobs'), ...APP],
    'The job framework (src/jobs) sits below the domain that declares tasks and run kinds: it knows only the base.',
  ),
  ...layer(
    [
      'src/sync/**',
      'src/schedules/**',
      'src/inbox/**',
      'src/companies/**',
      'src/auth/**',
      'src/exports/**',
      'src/notify/**',
      'src/financials/**',
      'src/onboarding/**',
      'src/timecards/**',
    ],
    ['schemas', ...APP],
    'The domain is called by routes, plugins and jobs; it never reaches up to them. Its mappers return the API ' +
      'types of src/schemas, which build on the domain, not the other way round.',
  ),
  ...layer(['src/schemas/**'], APP, 'The API contracts are read by routes and the domain; they never reach up.'),
  {
    files: ['routes/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\.?/(?!\\.\\./)(?!.*\\bsrc/)',
              message:
                'A route file never imports another route file: ' +
                'shared schemas live in src/schemas, shared logic in the domain.',
            },
          ],
        },
      ],
    },
  },
  // Migrations are frozen in time (layout included) and typed Kysely<any> on purpose:
  // they must not follow the app's types.
  { files: ['migrations/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off', 'max-len': 'off' } },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // tap's idiom: top-level t.test() calls are tracked by tap itself, and t.* methods are bound.
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
)
