// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** What core may not import; `withoutMetrics` also keeps prom-client out. */
function coreImportRule(withoutMetrics) {
  const paths = [
    { name: 'amqplib', message: 'core must not import amqplib: use @conveyor/amqp-transport' },
    { name: 'ioredis', message: 'core must not import ioredis: use @conveyor/result-redis' },
    { name: 'pg', message: 'core must not import pg: use @conveyor/result-postgres' },
  ];
  if (withoutMetrics) {
    paths.push({
      name: 'prom-client',
      message: 'prom-client is optional: import it only under src/metrics (@conveyor/core/metrics)',
    });
  }
  return {
    paths,
    patterns: [
      {
        group: ['amqplib/*', 'ioredis/*', 'pg/*', 'redis', 'pg-*'],
        message: 'core is broker-neutral',
      },
    ],
  };
}

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', '**/*.js', '!eslint.config.mjs'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware rules need the program: each file is checked with the tsconfig that holds it.
    // The packaging test's project compiles elsewhere, against the installed tarballs.
    files: ['**/*.ts'],
    ignores: ['test/packaging/project/**'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A promise nobody awaits or catches loses its failure (an unhandled rejection at best).
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // Core is broker-neutral (kombu's rule): broker and store clients live in their own packages.
    files: ['packages/core/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', coreImportRule(true)] },
  },
  {
    // prom-client is an optional peer: only the @conveyor/core/metrics entry point loads it.
    files: ['packages/core/src/metrics/**/*.ts', 'packages/core/test/metrics/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', coreImportRule(false)] },
  },
  {
    // A plugin builds on core's plugin kit alone, as one written outside this repository would:
    // what it needs from core is exported there (docs/architecture.md, "The layers").
    files: ['packages/{amqp-transport,result-redis,result-postgres}/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@conveyor/core',
              message: 'a plugin imports core through @conveyor/core/plugin',
            },
          ],
          patterns: [
            {
              group: ['@conveyor/core/*', '!@conveyor/core/plugin'],
              message: 'a plugin imports core through @conveyor/core/plugin',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/test/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
);
