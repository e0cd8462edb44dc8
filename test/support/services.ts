/**
 * Where the real services are for tests: `AMQP_URL`, `REDIS_URL` and `DATABASE_URL`, which Jest's
 * global setup (`test/global-setup.ts`) fills from the environment, the local default ports or
 * testcontainers, in that order (see `service-sources.ts`); the local defaults when it did not run.
 */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
/** RabbitMQ management API (the rabbitmq_management plugin), for reading queue state in tests. */
export const RABBITMQ_MANAGEMENT_URL =
  process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672';
