/**
 * Where the services are: the environment first (`AMQP_URL`, `REDIS_URL`, `DATABASE_URL`), then
 * the local defaults (the same strings as `test/support/services.ts`, which bench code does not
 * import).
 */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
