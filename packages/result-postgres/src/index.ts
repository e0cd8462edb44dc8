export { PostgresResultBackend } from './postgres-result-backend';
export type { PostgresResultBackendOptions } from './postgres-result-backend-options';
export type { ExpirySweepResult } from './expiry-sweeper';
