/** Tests run from TypeScript sources through SWC, which emits decorator metadata like tsc. */
const swc = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^@conveyor/core/testing$': '<rootDir>/packages/core/testing',
    '^@conveyor/core/metrics$': '<rootDir>/packages/core/src/metrics',
    '^@conveyor/core/plugin$': '<rootDir>/packages/core/src/plugin',
    '^@conveyor/([a-z-]+)$': '<rootDir>/packages/$1/src',
  },
  testMatch: ['<rootDir>/packages/*/test/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  setupFiles: ['reflect-metadata'],
  // Service URLs: environment, then local ports, then testcontainers where Docker answers.
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 30_000,
  maxWorkers: 2,
};
