import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import {
  Conveyor,
  DEAD_LETTER_REASON_HEADER,
  emptyEmbed,
  encodeTaskMessage,
  MemoryResultBackend,
  MemoryTransport,
  type ResultMeta,
  Task,
  TaskService,
  type SignatureDict,
  type TaskEmbed,
} from '@conveyor/core';
import { waitFor } from '@conveyor/core/testing';
import { Producer } from '../../src/producer/producer';
import { deadLetters, queued } from './fixtures';

@TaskService({ name: 'canvas' })
class CanvasTasks {
  /** Adds numbers, or joins strings (an errback gets the failed task's id first). */
  @Task()
  add(a: number | string, b: number | string): number | string {
    return (a as number) + (b as number);
  }

  @Task()
  fail(why: string): never {
    throw new Error(why);
  }
}

/** A signature dict as Celery puts it in `callbacks`, `errbacks` and `chain`. */
function sig(
  task: string,
  args: unknown[],
  options: Record<string, unknown> = {},
  immutable = false,
): SignatureDict {
  return { task, args, kwargs: {}, options, subtask_type: null, immutable };
}

describe('canvas links in messages (chains, callbacks, errbacks), as Celery sends them', () => {
  let app: Conveyor;
  let transport: MemoryTransport;

  beforeEach(async () => {
    transport = new MemoryTransport();
    app = new Conveyor({ broker: transport, tasks: [CanvasTasks] });
    await app.worker({ handleSignals: false }).start();
  });
  afterEach(() => app.close());

  /** Publishes `name(args)` with `embed`, as a Python producer would; returns its id. */
  async function publish(
    name: string,
    args: unknown[],
    embed: Partial<TaskEmbed>,
    to: MemoryTransport = transport,
  ) {
    const { message } = new Producer(transport, new Map()).build({
      name,
      args,
      kwargs: {},
      options: {},
      queue: 'celery',
      embed: { ...emptyEmbed(), ...embed },
    });
    await to.declareQueue({ name: 'celery' });
    await to.publish(encodeTaskMessage(message), { queue: 'celery' });
    return message.headers.id;
  }

  it('runs a chain step by step, each step getting the previous result, parent and root ids', async () => {
    const published = jest.spyOn(transport, 'publish');
    const [second, third] = [randomUUID(), randomUUID()];
    // Celery keeps the chain's remaining steps in reverse: the next one is the last.
    const first = await publish('canvas.add', [1, 2], {
      chain: [
        sig('canvas.add', [100], { task_id: third }),
        sig('canvas.add', [10], { task_id: second }),
      ],
    });
    await expect(app.result(third).get({ timeoutMs: 5_000 })).resolves.toBe(113);
    await expect(app.result(second).get({ timeoutMs: 5_000 })).resolves.toBe(13);
    await expect(app.result(first).get({ timeoutMs: 5_000 })).resolves.toBe(3);
    const metas = await Promise.all([first, second, third].map((id) => app.backend!.get(id)));
    expect(metas.map((m) => m?.status)).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
    const headers = (id: string) =>
      published.mock.calls.map(([message]) => message.headers).find((h) => h.id === id);
    expect(headers(second)).toMatchObject({ parent_id: first, root_id: first });
    expect(headers(third)).toMatchObject({ parent_id: second, root_id: first });
    // Stored as Celery stores them: parent_id when there is a parent, not otherwise.
    expect(metas.map((m) => m?.parent_id)).toEqual([undefined, first, second]);
  });

  it('sends each callback with the result prepended, except to an immutable one', async () => {
    const [plus, fixed] = [randomUUID(), randomUUID()];
    await publish('canvas.add', [2, 3], {
      callbacks: [
        sig('canvas.add', [1], { task_id: plus }),
        sig('canvas.add', [7, 8], { task_id: fixed }, true),
      ],
    });
    await expect(app.result(plus).get({ timeoutMs: 5_000 })).resolves.toBe(6);
    await expect(app.result(fixed).get({ timeoutMs: 5_000 })).resolves.toBe(15);
  });

  it('sends errbacks with the failed task id on failure; the rest of its chain is never sent, and stored FAILURE with the same error', async () => {
    const [errback, next] = [randomUUID(), randomUUID()];
    const failed = await publish('canvas.fail', ['boom'], {
      errbacks: [sig('canvas.add', [':failed'], { task_id: errback })],
      chain: [sig('canvas.add', [1], { task_id: next })],
    });
    await expect(app.result(errback).get({ timeoutMs: 5_000 })).resolves.toBe(`${failed}:failed`);
    await expect(app.result(failed).state()).resolves.toBe('FAILURE');
    // The chain stopped at the failure: its next step was never sent, but it is stored FAILURE
    // with the same exception (Celery's mark_as_failure), so waiting on it does not hang.
    await expect(app.result(next).get({ timeoutMs: 5_000 })).rejects.toMatchObject({
      excType: 'Error',
      excMessage: ['boom'],
    });
    expect(queued(transport, 'celery')).toHaveLength(0);
  });

  it('stores the unrun steps FAILURE in the order they would have run, so the last step is FAILURE only after every step before it', async () => {
    const stored: string[] = [];
    class RecordingBackend extends MemoryResultBackend {
      override async store(meta: ResultMeta): Promise<void> {
        stored.push(meta.task_id);
        await super.store(meta);
      }
    }
    const broker = new MemoryTransport();
    const ordered = new Conveyor({
      broker,
      backend: new RecordingBackend(),
      tasks: [CanvasTasks],
    });
    await ordered.worker({ handleSignals: false }).start();
    try {
      const [second, third] = [randomUUID(), randomUUID()];
      // embed.chain is a stack: the step to run next is last.
      const first = await publish(
        'canvas.fail',
        ['boom'],
        {
          chain: [
            sig('canvas.add', [1], { task_id: third }),
            sig('canvas.add', [2], { task_id: second }),
          ],
        },
        broker,
      );
      await expect(ordered.result(third).get({ timeoutMs: 5_000 })).rejects.toMatchObject({
        excMessage: ['boom'],
      });
      expect(stored).toEqual([first, second, third]);
    } finally {
      await ordered.close();
    }
  });

  it('carries the options of a link: queue, and its own callbacks', async () => {
    await transport.declareQueue({ name: 'elsewhere' });
    const [linked, inner] = [randomUUID(), randomUUID()];
    await publish('canvas.add', [1, 1], {
      callbacks: [
        sig('canvas.add', [1], {
          task_id: linked,
          link: sig('canvas.add', [1], { task_id: inner, queue: 'elsewhere' }),
        }),
      ],
    });
    await expect(app.result(linked).get({ timeoutMs: 5_000 })).resolves.toBe(3);
    // The worker consumes 'celery' only: the link's link waits on the queue it named.
    await waitFor(() => queued(transport, 'elsewhere').length === 1, 'the inner link, queued');
    const [message] = queued(transport, 'elsewhere');
    expect(message!.headers).toMatchObject({ id: inner, task: 'canvas.add', parent_id: linked });
  });

  it.each([
    ['a chord header task', { chord: sig('canvas.add', [0]) }, /part of a chord header/],
    [
      'a group as a callback',
      { callbacks: [{ ...sig('celery.group', []), subtask_type: 'group' }] },
      /link of type 'group'/,
    ],
  ])(
    'dead-letters %s with a reason before running it',
    async (_label, embed: Partial<TaskEmbed>, reason) => {
      const id = await publish('canvas.add', [1, 2], embed);
      await waitFor(() => deadLetters(transport, 'celery').length === 1, 'the dead letter');
      const [dead] = deadLetters(transport, 'celery');
      expect(dead!.headers.id).toBe(id);
      expect(String(dead!.headers[DEAD_LETTER_REASON_HEADER])).toMatch(reason);
      await expect(app.result(id).state()).resolves.toBe('PENDING');
    },
  );
});
