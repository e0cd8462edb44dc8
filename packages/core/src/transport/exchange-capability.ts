import { ConfigError } from '../errors';
import type { Transport } from './transport';

/** The members of the optional `exchanges` capability of a {@link Transport}. */
export type ExchangeCapable = Transport &
  Required<Pick<Transport, 'declareExchange' | 'publishTransient' | 'subscribeExchange'>>;

/** Whether a transport offers the `exchanges` capability (events, remote-control replies). */
export function hasExchanges(transport: Transport): transport is ExchangeCapable {
  return (
    typeof transport.declareExchange === 'function' &&
    typeof transport.publishTransient === 'function' &&
    typeof transport.subscribeExchange === 'function'
  );
}

/**
 * The transport, if it offers the `exchanges` capability; otherwise a `ConfigError` saying what
 * needed it and which transports offer it.
 */
export function requireExchanges(transport: Transport, neededBy: string): ExchangeCapable {
  if (hasExchanges(transport)) return transport;
  throw new ConfigError(
    `${neededBy} needs a transport with the 'exchanges' capability (declareExchange, ` +
      `publishTransient, subscribeExchange), which ${transport.constructor.name} lacks; ` +
      `@conveyor/amqp-transport and the memory transport offer it`,
  );
}
