/** Raw Celery protocol v2 messages, for tests that publish with amqplib directly. */

/** A message as published with raw amqplib. */
export interface RawMessage {
  headers?: Record<string, unknown>;
  properties: { contentType?: string; contentEncoding?: string };
  body: Buffer;
}

/** Celery protocol v2 headers of a valid `faults.record` task. */
export function validHeaders(id: string): Record<string, unknown> {
  return {
    lang: 'js',
    task: 'faults.record',
    id,
    shadow: null,
    eta: null,
    expires: null,
    group: null,
    group_index: null,
    retries: 0,
    timelimit: [null, null],
    root_id: id,
    parent_id: null,
    argsrepr: '(0, 0)',
    kwargsrepr: '{}',
    origin: 'gen0@faults',
    ignore_result: false,
  };
}

export const EMBED = { callbacks: null, errbacks: null, chain: null, chord: null };
export const JSON_PROPS = { contentType: 'application/json', contentEncoding: 'utf-8' };

/** A valid `faults.record(n, 0)` message. */
export function validMessage(id: string, n: number): RawMessage {
  return {
    headers: validHeaders(id),
    properties: JSON_PROPS,
    body: Buffer.from(JSON.stringify([[n, 0], {}, EMBED])),
  };
}
