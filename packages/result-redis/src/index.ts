export { RedisResultBackend } from './redis-result-backend';
export type { RedisResultBackendOptions } from './redis-result-backend-options';
