export { AmqpTransport } from './amqp-transport';
export type {
  AmqpTransportLogger,
  AmqpTransportOptions,
  ReconnectOptions,
} from './amqp-transport-options';
