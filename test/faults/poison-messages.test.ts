import { randomUUID } from 'node:crypto';
import { connect, type ConfirmChannel } from 'amqplib';
import { DEAD_LETTER_REASON_HEADER, deadLetterQueueName } from '@conveyor/core/plugin';
import { waitFor } from '@conveyor/core/testing';
import { rabbitmqctl, readyCount, takeAll } from '../support/rabbitmq';
import { AMQP_URL } from '../support/services';
import { useFaultScopes } from '../support/faults/fault-scope';
import { expectSound, Ledger, returnedItsNumber } from '../support/faults/ledger';
import {
  JSON_PROPS,
  EMBED,
  validHeaders,
  validMessage,
  type RawMessage,
} from '../support/faults/messages';
import { WorkerProcess } from '../support/faults/worker-process';

const MAX_BODY_BYTES = 64 * 1024;
const MALFORMED = 1_000;
/** One valid task after every this many malformed messages. */
const VALID_EVERY = 5;

/** A malformed message and the dead-letter reason it must get. */
interface Poison {
  kind: string;
  message: RawMessage;
  reason: RegExp;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Wrong values for every header the decoder checks, with the reason each must produce. */
const WRONG_HEADERS: Array<[string, unknown, RegExp?]> = [
  ['task', 42],
  ['task', true],
  ['task', ''],
  ['task', { name: 'faults.record' }],
  ['task', ['faults.record']],
  ['id', 7],
  ['id', ''],
  ['id', { id: 'x' }],
  ['lang', 3],
  ['shadow', 12],
  ['eta', 1_700_000_000],
  ['eta', 'tomorrow at noon', /header 'eta' is not an ISO 8601 time/],
  ['expires', false],
  ['expires', 'never', /header 'expires' is not an ISO 8601 time/],
  ['group', 5],
  ['group_index', 'first'],
  ['group_index', 1.5],
  ['retries', '3'],
  ['retries', 2.5],
  ['retries', -1, /header 'retries' must not be negative/],
  ['timelimit', '30'],
  ['timelimit', [1]],
  ['timelimit', [-1, null]],
  ['timelimit', [1, 'soon']],
  ['root_id', 9],
  ['parent_id', true],
  ['argsrepr', 1],
  ['kwargsrepr', { a: 1 }],
  ['origin', ['host']],
  ['ignore_result', 'yes'],
  ['ignore_result', 1],
];

/** The i-th malformed message: the kinds take turns, each with its own variations. */
function poison(i: number): Poison {
  const id = randomUUID();
  const valid = validMessage(id, i);
  const kinds: Array<() => Poison> = [
    () => {
      const text = valid.body.toString();
      return {
        kind: 'truncated JSON',
        message: { ...valid, body: Buffer.from(text.slice(0, i % (text.length - 1))) },
        reason: /body is not valid JSON/,
      };
    },
    () => ({
      kind: 'not JSON',
      message: { ...valid, body: Buffer.from([0xff, 0xfe, 0x00, i % 256, 0x80]) },
      reason: /body is not valid JSON/,
    }),
    () => {
      const [header, value, reason] = WRONG_HEADERS[i % WRONG_HEADERS.length]!;
      return {
        kind: `wrong type in header '${header}'`,
        message: { ...valid, headers: { ...validHeaders(id), [header]: value } },
        reason: reason ?? new RegExp(`header '${header}' must be`),
      };
    },
    () => ({
      kind: 'body past maxBodyBytes',
      message: {
        ...valid,
        body: Buffer.from(
          JSON.stringify([['x'.repeat(MAX_BODY_BYTES + (i % 7) * 1_000), 0], {}, EMBED]),
        ),
      },
      reason: new RegExp(`body of \\d+ bytes exceeds the limit of ${MAX_BODY_BYTES}`),
    }),
    () => {
      const task = `faults.unknown-${i}`;
      return {
        kind: 'unknown task',
        message: { ...valid, headers: { ...validHeaders(id), task } },
        reason: new RegExp(`task '${escape(task)}' is not registered`),
      };
    },
    () => {
      const types = [
        'text/plain',
        'application/x-python-serialize',
        'application/x-yaml',
        'application/x-msgpack',
        undefined,
      ];
      const contentType = types[i % types.length];
      return {
        kind: 'bad content type',
        message: { ...valid, properties: { ...JSON_PROPS, contentType } },
        reason: new RegExp(`content type '${escape(String(contentType))}' is not supported`),
      };
    },
    () => {
      const encoding = ['binary', 'gzip', 'latin-1'][i % 3]!;
      return {
        kind: 'bad content encoding',
        message: { ...valid, properties: { ...JSON_PROPS, contentEncoding: encoding } },
        reason: new RegExp(`content encoding '${encoding}' is not supported`),
      };
    },
    () => {
      const depth = [65, 1_000, 20_000][i % 3]!;
      return {
        kind: 'deep nesting',
        message: {
          ...valid,
          body: Buffer.from(`[${'['.repeat(depth)}${']'.repeat(depth)}, {}, null]`),
        },
        reason: /body nests deeper than 64 levels/,
      };
    },
    () => ({
      kind: 'protocol v1 body',
      message: {
        headers: {},
        properties: JSON_PROPS,
        body: Buffer.from(
          JSON.stringify({
            task: 'faults.record',
            id,
            args: [i, 0],
            kwargs: {},
            retries: 0,
            eta: null,
          }),
        ),
      },
      reason: /no task headers: Celery protocol v1/,
    }),
    () => {
      const variant = i % 3;
      const headers = validHeaders(id);
      if (variant === 0) delete headers.id;
      if (variant === 1) delete headers.task;
      return {
        kind: 'missing headers',
        message: { ...valid, headers: variant === 2 ? undefined : headers },
        reason: [
          /header 'id' must be a non-empty string/,
          /header 'task' must be a non-empty string/,
          /no task headers/,
        ][variant]!,
      };
    },
    () => {
      const bodies: Array<[string, RegExp]> = [
        ['{}', /body must be the JSON array \[args, kwargs, embed\]/],
        ['[1, 2]', /body must be the JSON array/],
        ['"text"', /body must be the JSON array/],
        ['[{}, {}, null]', /body\[0\] \(args\) must be an array/],
        ['[[], [], null]', /body\[1\] \(kwargs\) must be an object/],
        ['[[], {}, 5]', /body\[2\] \(embed\) must be an object or null/],
      ];
      const [body, reason] = bodies[i % bodies.length]!;
      return { kind: 'wrong body shape', message: { ...valid, body: Buffer.from(body) }, reason };
    },
  ];
  return kinds[i % kinds.length]!();
}

async function publishRaw(
  channel: ConfirmChannel,
  queue: string,
  message: RawMessage,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const headers =
    message.headers === undefined && Object.keys(extra).length === 0
      ? undefined
      : { ...message.headers, ...extra };
  channel.publish('', queue, message.body, { ...message.properties, headers, deliveryMode: 2 });
}

describe('faults: poison and hostile input', () => {
  const openScope = useFaultScopes();

  it(`${MALFORMED} malformed messages interleaved with valid tasks: each ends on <queue>.dead with its reason, every valid task completes, the worker never crashes`, async () => {
    const scope = openScope('poison');
    const ledger = new Ledger(`poison: ${MALFORMED} malformed + ${MALFORMED / VALID_EVERY} valid`);
    const producer = scope.producer();
    const worker = await WorkerProcess.start(
      scope.workerEnv({ concurrency: 20, prefetchMultiplier: 2, maxBodyBytes: MAX_BODY_BYTES }),
    );

    const expected = new Map<number, Poison>();
    const connection = await connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      for (let i = 0; i < MALFORMED; i += 1) {
        const p = poison(i);
        expected.set(i, p);
        await publishRaw(channel, scope.queue, p.message, { 'x-fault-seq': i });
        if (i % VALID_EVERY === VALID_EVERY - 1) {
          const id = randomUUID();
          await publishRaw(channel, scope.queue, validMessage(id, i));
          ledger.sentRaw(id, producer.result(id));
        }
      }
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }

    await ledger.collect(30_000, returnedItsNumber);
    const dead = deadLetterQueueName(scope.queue);
    await waitFor(
      async () => (await readyCount(dead)) >= MALFORMED,
      'every malformed message dead-lettered',
      30_000,
    );
    const counts = ledger.tally(await scope.runs());
    expectSound(counts, ledger.lostIds());
    expect(worker.alive).toBe(true);

    // Read each dead-lettered copy back from the broker and check its reason against its kind.
    const letters = await takeAll(dead);
    const mismatches: string[] = [];
    const seen = new Set<number>();
    const byKind = new Map<string, number>();
    for (const letter of letters) {
      const seq = Number(letter.properties.headers?.['x-fault-seq']);
      const reason = String(letter.properties.headers?.[DEAD_LETTER_REASON_HEADER]);
      const p = expected.get(seq);
      if (!p) {
        mismatches.push(`unexpected dead letter ${seq}: ${reason}`);
        continue;
      }
      if (seen.has(seq)) mismatches.push(`#${seq} (${p.kind}) dead-lettered twice`);
      seen.add(seq);
      byKind.set(p.kind, (byKind.get(p.kind) ?? 0) + 1);
      if (!p.reason.test(reason))
        mismatches.push(`#${seq} ${p.kind}: reason '${reason}' does not match ${p.reason}`);
      if (!letter.content.equals(p.message.body))
        mismatches.push(`#${seq} ${p.kind}: body changed on the way`);
    }
    // 'missing headers' variant 2 has no headers of its own, only x-fault-seq: still found.
    const missing = [...expected.keys()].filter((seq) => !seen.has(seq));
    console.log(
      `[fault-counts] poison: malformed ${MALFORMED} | dead-lettered ${letters.length} | with the right reason ${seen.size - mismatches.length} | ` +
        `valid sent ${counts.sent} | stored ${counts.stored} | lost ${counts.lost} | kinds ${JSON.stringify(Object.fromEntries(byKind))}`,
    );
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(missing.slice(0, 20)).toEqual([]);
    expect(letters).toHaveLength(MALFORMED);
    expect(await readyCount(scope.queue)).toBe(0);

    // Still serving.
    const after = await producer.send('faults.record', [-1, 0]);
    await expect(after.get({ timeoutMs: 10_000 })).resolves.toMatchObject({
      n: -1,
      pid: worker.pid,
    });
    expect(worker.alive).toBe(true);
  }, 90_000);

  it('a task whose eta is past the 49.7-day reach of the delay levels is not requeued in a loop', async () => {
    const scope = openScope('far-eta');
    const worker = await WorkerProcess.start(scope.workerEnv({ concurrency: 2 }));
    const id = randomUUID();
    const message = validMessage(id, 0);
    const eta = new Date(Date.now() + 60 * 24 * 3_600_000).toISOString();
    const connection = await connect(AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      channel.sendToQueue(scope.queue, message.body, {
        ...message.properties,
        headers: { ...message.headers, eta },
        deliveryMode: 2,
      });
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    // It must wait somewhere (the delay levels, or the dead-letter queue with a reason): not
    // bounce between the queue and the worker every second, holding a prefetch slot.
    const rows = (
      await rabbitmqctl('list_queues', 'name', 'messages_ready', 'messages_unacknowledged')
    )
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(([name]) => name === scope.queue);
    const bounces = (worker.output.match(/deliverAt is \d+ ms ahead/g) ?? []).length;
    // [ready, unacked] of the task queue, and how often the worker failed to re-delay it.
    expect({ queue: rows[0]?.slice(1, 3), bounces }).toEqual({
      queue: ['0', '0'],
      bounces: bounces <= 1 ? bounces : '<= 1',
    });
    // And it is somewhere: parked in a delay level, or dead-lettered with a reason.
    const parked = (await rabbitmqctl('list_queues', 'name', 'messages'))
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(
        ([name, count]) =>
          (name!.startsWith(scope.delayNamespace) || name === deadLetterQueueName(scope.queue)) &&
          Number(count) > 0,
      );
    expect(parked).toHaveLength(1);
  }, 60_000);
});
