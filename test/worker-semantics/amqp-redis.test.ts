import { AmqpTransport } from '@conveyor/amqp-transport';
import { RedisResultBackend } from '@conveyor/result-redis';
import { delayNamespace, removeDelayNamespace, removeQueues } from '../support/rabbitmq';
import { deleteRedisKeys, redisTestPrefix } from '../support/redis';
import { AMQP_URL, REDIS_URL } from '../support/services';
import { describeWorkerSemantics } from '@conveyor/core/testing';
import { buildPackages } from '../support/faults/build';

const namespace = delayNamespace();
const prefix = redisTestPrefix();

afterAll(async () => {
  await removeDelayNamespace(namespace);
  await deleteRedisKeys(prefix);
});

// Task threads load the compiled @conveyor/core.
beforeAll(() => buildPackages(), 120_000);

describeWorkerSemantics('RabbitMQ + Redis', () => ({
  transport: () =>
    new AmqpTransport({
      url: AMQP_URL,
      delayNamespace: namespace,
      onError: () => undefined,
    }),
  backend: () =>
    new RedisResultBackend({
      url: REDIS_URL,
      keyPrefix: `${prefix}celery-task-meta-`,
      groupKeyPrefix: `${prefix}celery-taskset-meta-`,
    }),
  removeQueues,
}));
