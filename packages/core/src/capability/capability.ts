import {
  BACKEND_CAPABILITIES,
  type BackendCapability,
  type ResultBackend,
} from '../backend/result-backend';
import { ConfigError } from '../errors';
import {
  TRANSPORT_CAPABILITIES,
  type Transport,
  type TransportCapability,
} from '../transport/transport';

/** A transport known to have capability `C`: its members are no longer optional. */
export type TransportWith<C extends TransportCapability> = Transport &
  Required<Pick<Transport, (typeof TRANSPORT_CAPABILITIES)[C][number]>>;

/** A result backend known to have capability `C`: its members are no longer optional. */
export type BackendWith<C extends BackendCapability> = ResultBackend &
  Required<Pick<ResultBackend, (typeof BACKEND_CAPABILITIES)[C][number]>>;

const MEMBERS: Record<string, readonly string[]> = {
  ...TRANSPORT_CAPABILITIES,
  ...BACKEND_CAPABILITIES,
};

/** Whether a transport has capability `C` (implements all of its members). */
export function hasCapability<C extends TransportCapability>(
  target: Transport,
  capability: C,
): target is TransportWith<C>;
/** Whether a result backend has capability `C` (implements all of its members). */
export function hasCapability<C extends BackendCapability>(
  target: ResultBackend,
  capability: C,
): target is BackendWith<C>;
export function hasCapability(target: object, capability: string): boolean {
  const members = MEMBERS[capability];
  if (!members) throw new ConfigError(`'${capability}' is not a Conveyor capability`);
  const record = target as Record<string, unknown>;
  return members.every((member) => typeof record[member] === 'function');
}

/**
 * Returns `target` typed with capability `C`, or throws a `ConfigError` that names the
 * capability, the `feature` that needs it and the package(s) that offer it (`offeredBy`, e.g.
 * `'@conveyor/amqp-transport'`). Call it when the feature starts (a worker's `start()`, an
 * app's constructor), so a missing capability is a configuration error, never a failure
 * halfway through a run.
 *
 * @example
 * const events = requireCapability(app.transport, 'exchanges', 'task events', '@conveyor/amqp-transport');
 * await events.declareExchange({ name: 'celeryev', type: 'topic' });
 */
export function requireCapability<C extends TransportCapability>(
  target: Transport,
  capability: C,
  feature: string,
  offeredBy: string,
): TransportWith<C>;
export function requireCapability<C extends BackendCapability>(
  target: ResultBackend,
  capability: C,
  feature: string,
  offeredBy: string,
): BackendWith<C>;
export function requireCapability(
  target: Transport | ResultBackend,
  capability: TransportCapability | BackendCapability,
  feature: string,
  offeredBy: string,
): Transport | ResultBackend {
  if ((hasCapability as (t: object, c: string) => boolean)(target, capability)) return target;
  const kind = capability in TRANSPORT_CAPABILITIES ? 'transport' : 'result backend';
  const name = target.constructor?.name ?? kind;
  throw new ConfigError(
    `${feature} needs the ${kind} capability '${capability}' (${MEMBERS[capability]!.join(', ')}), ` +
      `which ${name} does not offer; use ${offeredBy}`,
  );
}

/** The capabilities a transport has, in the order {@link TRANSPORT_CAPABILITIES} lists them. */
export function capabilitiesOf(target: Transport): TransportCapability[];
/** The capabilities a result backend has, in the order {@link BACKEND_CAPABILITIES} lists them. */
export function capabilitiesOf(target: ResultBackend): BackendCapability[];
export function capabilitiesOf(target: Transport | ResultBackend): string[] {
  // Only a transport publishes: that tells the two interfaces apart.
  const table = 'publish' in target ? TRANSPORT_CAPABILITIES : BACKEND_CAPABILITIES;
  const has = hasCapability as (t: object, c: string) => boolean;
  return Object.keys(table).filter((capability) => has(target, capability));
}
