import {
  BROKER_DELIVERY_COUNT_HEADER,
  DELIVERY_COUNT_HEADER,
  type Delivery,
  type TransportMessage,
} from '../transport/transport';

/**
 * What a worker does with a delivery, given how many earlier deliveries of the same message
 * ended without completing (its worker died, or gave it back):
 * - `run`: under the cap, run it;
 * - `recount`: a classic queue redelivered it; publish `message` (the count raised) in its place
 *   and ack this one, then the copy runs;
 * - `dead-letter`: `failed` deliveries reached the cap; dead-letter it and store FAILURE.
 */
export type DeliveryVerdict =
  | { readonly action: 'run' }
  | { readonly action: 'recount'; readonly failed: number; readonly message: TransportMessage }
  | { readonly action: 'dead-letter'; readonly failed: number };

const RUN: DeliveryVerdict = { action: 'run' };

/**
 * Counts the failed deliveries of a task message against `maxDeliveries`.
 *
 * A quorum queue counts them itself, in `x-delivery-count`, to which the count a copy carries
 * is added (see {@link unstartedCopy}). A classic queue redelivers a message unchanged with only its `redelivered` flag, which
 * cannot count past one; so a redelivered message is replaced by a copy carrying the count in
 * {@link DELIVERY_COUNT_HEADER}, published (confirmed) before the original is acked. A crash
 * between the two leaves both copies, each with a count: a duplicate, never a loss. Only
 * redeliveries pay for the extra publish.
 */
export function judgeDelivery(delivery: Delivery, maxDeliveries: number): DeliveryVerdict {
  const headers = delivery.message.headers;
  const failed = failedDeliveries(delivery);
  if (countOf(headers[BROKER_DELIVERY_COUNT_HEADER]) !== undefined) {
    return failed >= maxDeliveries ? { action: 'dead-letter', failed } : RUN;
  }
  if (!delivery.redelivered) return RUN;
  if (failed >= maxDeliveries) return { action: 'dead-letter', failed };
  return {
    action: 'recount',
    failed,
    message: { ...delivery.message, headers: { ...headers, [DELIVERY_COUNT_HEADER]: failed } },
  };
}

/**
 * Failed deliveries of a message so far, this one excluded: the broker's count (quorum queues)
 * plus the count a copy carries, or on a classic queue the count a copy carries plus one when
 * the broker redelivered it (the delivery before may have run).
 */
function failedDeliveries(delivery: Delivery): number {
  const headers = delivery.message.headers;
  const carried = countOf(headers[DELIVERY_COUNT_HEADER]) ?? 0;
  const counted = countOf(headers[BROKER_DELIVERY_COUNT_HEADER]);
  if (counted !== undefined) return counted + carried;
  return delivery.redelivered ? carried + 1 : carried;
}

/**
 * The copy that replaces a message a worker gives back without having started it (it stops
 * gracefully): the count so far in {@link DELIVERY_COUNT_HEADER}, the broker's own count left
 * behind (a new message starts its count from zero, and the copy carries what it had). A
 * requeued message would come back `redelivered` (or counted by a quorum queue) as if it had
 * run; the copy is delivered as new, so an unstarted delivery counts for nothing.
 */
export function unstartedCopy(delivery: Delivery): TransportMessage {
  const headers: Record<string, unknown> = { ...delivery.message.headers };
  const failed = failedDeliveries(delivery);
  delete headers[BROKER_DELIVERY_COUNT_HEADER];
  delete headers[DELIVERY_COUNT_HEADER];
  if (failed > 0) headers[DELIVERY_COUNT_HEADER] = failed;
  return { ...delivery.message, headers };
}

function countOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/**
 * True when the message was delivered before: flagged by the broker, or a copy that replaced a
 * redelivered message (which the broker delivers as new). What `taskContext().redelivered` says.
 */
export function deliveredBefore(delivery: Delivery): boolean {
  return (
    delivery.redelivered || (countOf(delivery.message.headers[DELIVERY_COUNT_HEADER]) ?? 0) > 0
  );
}
