/** RabbitMQ helpers for cross-package tests, shared with the AMQP transport's own tests. */
export {
  delayNamespace,
  rabbitmqctl,
  createVhost,
  type TestVhost,
  readyCount,
  removeDelayNamespace,
  removeQueues,
  unacked,
  withRawChannel,
} from '../../packages/amqp-transport/test/support/broker';
