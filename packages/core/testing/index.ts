/**
 * Test kit for Conveyor implementers: the conformance suites every Transport and ResultBackend
 * must pass, and small helpers for tests. Imported as `@conveyor/core/testing` in Jest tests.
 */
export * from './transport-conformance';
export * from './backend-conformance';
export * from './worker-semantics';
export * from './wait-for';
export * from './result-metas';
