/** RabbitMQ helpers for cross-package tests, shared with the AMQP transport's own tests. */
export {
  delayNamespace,
  delayedIn,
  listQueues,
  rabbitmqctl,
  readyCount,
  removeDelayNamespace,
  removeQueues,
  unacked,
  withRawChannel,
} from '../../packages/amqp-transport/test/support/broker';
