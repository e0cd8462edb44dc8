import { randomUUID } from 'node:crypto';
import {
  DEAD_LETTER_REASON_HEADER,
  deadLetterQueueName,
  SerializationError,
  Task,
  TaskService,
  TaskTimeLimitError,
  WorkerLostError,
  taskContext,
} from '@conveyor/core';
import { IsDate, IsEmail, Min } from 'class-validator';
import { waitFor } from '@conveyor/core/testing';
import { withRawChannel } from '../support/rabbitmq';
import { useCeleryInterop } from './interop-scope';
import { pythonCanvas, pythonSend } from './python-celery';

class NewUser {
  @IsEmail() email!: string;
  @Min(18) age!: number;
}

class Stamp {
  @IsDate() at!: Date;
  undecorated!: Date;
}

@TaskService({ name: 'values' })
class Values {
  @Task()
  next(n: bigint): bigint {
    return n + 1n;
  }

  @Task()
  add(a: number, b: number): number {
    return a + b;
  }

  @Task()
  signup(user: NewUser): string {
    return `welcome ${user.email}`;
  }

  @Task({ returns: () => Stamp })
  stamp(): Stamp {
    const at = new Date('2026-12-06T03:00:00.000Z');
    return Object.assign(new Stamp(), { at, undecorated: at });
  }

  @Task({ timeLimitMs: 300 })
  async sleep(): Promise<string> {
    const { signal } = taskContext();
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    return 'aborted';
  }
}

const idleQueue = `values-idle-${randomUUID()}`;

describe('Values and errors across Conveyor and real Python Celery 5 (RabbitMQ, Redis)', () => {
  const { app, pyQueue, tsQueue, taskIds, track } = useCeleryInterop('values', {
    tasks: [Values],
    validate: true,
    extraQueues: [idleQueue],
  });

  /** The dead-letter reasons of tsQueue's messages of these task ids, once all are there. */
  const deadLetterReasons = async (ids: string[]): Promise<Map<string, string>> => {
    const reasons = new Map<string, string>();
    await waitFor(
      async () => {
        await withRawChannel(async (ch) => {
          const dead = deadLetterQueueName(tsQueue);
          for (
            let m = await ch.get(dead, { noAck: true });
            m;
            m = await ch.get(dead, { noAck: true })
          ) {
            reasons.set(
              String(m.properties.headers?.id),
              String(m.properties.headers?.[DEAD_LETTER_REASON_HEADER]),
            );
          }
        });
        return ids.every((id) => reasons.has(id));
      },
      `dead letters of ${ids.join(', ')}`,
    );
    return reasons;
  };

  describe('integers beyond 2^53 and the one number type', () => {
    it('sends a BigInt as the exact integer: Python reads 2**63 + 1 as an int', async () => {
      const result = track(
        await app.send('tasks.describe_value', [2n ** 63n + 1n], { queue: pyQueue }),
      );
      await expect(result.get({ timeoutMs: 15_000 })).resolves.toEqual({
        repr: '9223372036854775809',
        type: 'int',
      });
    });

    it("reads a Python worker's 2**64 + 1 exactly, as a BigInt; 2.0 arrives as 2 and -0.0 as -0", async () => {
      const result = track(await app.send('tasks.values', [], { queue: pyQueue }));
      const values = (await result.get({ timeoutMs: 15_000 })) as Record<string, unknown>;
      expect(values.big).toBe(2n ** 64n + 1n);
      expect(values.negative_big).toBe(-(2n ** 63n + 1n));
      expect(Object.is(values.two, 2)).toBe(true);
      expect(Object.is(values.negative_zero, -0)).toBe(true);
    });

    it("gives a bigint parameter Python's 2**63 + 1 exactly, and Python gets 2**63 + 2 back", async () => {
      const out = await pythonSend({ task: 'values.next', queue: tsQueue, args: [2n ** 63n + 1n] });
      taskIds.push(out.id);
      expect(out).toMatchObject({ ok: true, result: 2n ** 63n + 2n });
    });
  });

  describe('argument types checked against the recorded parameter types', () => {
    it("refuses Python's '12' and 2**63 + 1 for a number parameter: Python's get() raises TypeError, and the message is dead-lettered with the reason", async () => {
      const [text, big] = await Promise.all([
        pythonSend({ task: 'values.add', queue: tsQueue, args: ['12', 1] }),
        pythonSend({ task: 'values.add', queue: tsQueue, args: [2n ** 63n + 1n, 1] }),
      ]);
      taskIds.push(text.id, big.id);
      expect(text).toMatchObject({ ok: false, state: 'FAILURE', exc_type: 'TypeError' });
      expect(text.exc_module).toBe('builtins');
      expect(text.exc_message).toMatch(
        /args\[0\] \(a\): Values\.add takes a number there, got the string "12"/,
      );
      expect(big.exc_type).toBe('TypeError');
      expect(big.exc_message).toMatch(
        /got the BigInt 9223372036854775809: .*declare the parameter `bigint`/,
      );
      const reasons = await deadLetterReasons([text.id, big.id]);
      expect(reasons.get(text.id)).toMatch(/args\[0\] \(a\): .*got the string "12"/);
      expect(reasons.get(big.id)).toMatch(/args\[0\] \(a\): .*got the BigInt/);
    });

    it('refuses them at delay(), naming the argument, before anything is published', async () => {
      const client = app.client(Values);
      await expect(client.add.delay('12' as unknown as number, 1)).rejects.toMatchObject({
        name: 'SerializationError',
        path: 'args[0] (a)',
      });
      await expect(
        client.add.applyAsync([1, (2n ** 63n) as unknown as number], { queue: idleQueue }),
      ).rejects.toThrow(/args\[1\] \(b\): .*got the BigInt 9223372036854775808/);
      await expect(
        client.add.applyAsync([1, 2], { kwargs: { b: { a: 1 } }, queue: idleQueue }),
      ).rejects.toMatchObject({ path: 'kwargs.b' });
      await withRawChannel(async (ch) => {
        await ch.assertQueue(idleQueue, { durable: true });
        expect((await ch.checkQueue(idleQueue)).messageCount).toBe(0);
      });
    });
  });

  describe('validate: true checks DTOs with class-validator', () => {
    it('refuses an invalid DTO at delay(), with the path of the failing field', async () => {
      const client = app.client(Values);
      await expect(
        client.signup.applyAsync([{ email: 'not-an-email', age: 30 }], { queue: idleQueue }),
      ).rejects.toMatchObject({
        name: 'SerializationError',
        path: 'args[0].email',
        reason: expect.stringMatching(/fails validation: email must be an email/),
      });
      const ok = track(await client.signup.delay({ email: 'ada@example.com', age: 30 }));
      await expect(ok.get({ timeoutMs: 10_000 })).resolves.toBe('welcome ada@example.com');
    });

    it("refuses Python's invalid DTO on the worker: Python's get() raises ValueError, and the message is dead-lettered with the reason", async () => {
      const out = await pythonSend({
        task: 'values.signup',
        queue: tsQueue,
        args: [{ email: 'ada@example.com', age: 12 }],
      });
      taskIds.push(out.id);
      expect(out).toMatchObject({ ok: false, exc_type: 'ValueError', exc_module: 'builtins' });
      expect(out.exc_message).toMatch(
        /args\[0\]\.age: fails validation: age must not be less than 18/,
      );
    });
  });

  it("rebuilds a returned class's decorated Date fields as Dates, from their recorded types", async () => {
    const result = track(await app.client(Values).stamp.delay());
    const stamp = await result.get({ timeoutMs: 10_000 });
    expect(stamp).toBeInstanceOf(Stamp);
    expect(stamp.at).toEqual(new Date('2026-12-06T03:00:00.000Z'));
    // TypeScript records no type for an undecorated field (documented beside `returns`).
    expect(stamp.undecorated).toBe('2026-12-06T03:00:00.000Z');
  });

  it("refuses at delay() an argument over the workers' maxBodyBytes, giving size and limit", async () => {
    const huge = 'x'.repeat(16 * 1024 * 1024);
    const sent = app.send('tasks.describe_value', [huge], { queue: idleQueue });
    await expect(sent).rejects.toBeInstanceOf(SerializationError);
    await expect(sent).rejects.toThrow(
      /message body would be 167772\d\d bytes, over the 16777216 bytes workers accept/,
    );
    await withRawChannel(async (ch) => {
      await ch.assertQueue(idleQueue, { durable: true });
      expect((await ch.checkQueue(idleQueue)).messageCount).toBe(0);
    });
  });

  describe("Celery's own exceptions, by class and module", () => {
    it("stores a hard time limit as billiard's TimeLimitExceeded, which Python catches; Conveyor reads TaskTimeLimitError", async () => {
      const out = await pythonSend({ task: 'values.sleep', queue: tsQueue, timeout: 15 });
      taskIds.push(out.id);
      expect(out).toMatchObject({
        ok: false,
        exc_type: 'TimeLimitExceeded',
        exc_module: 'billiard.exceptions',
      });
      const error = await app
        .result(out.id)
        .get({ timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskTimeLimitError);
      expect(error).toMatchObject({ limitMs: 300, code: 'CONVEYOR_ERR_TIME_LIMIT' });
    });

    it("reads Python's stored TimeLimitExceeded and WorkerLostError as TaskTimeLimitError and WorkerLostError", async () => {
      const [limited, lost] = [randomUUID(), randomUUID()];
      taskIds.push(limited, lost);
      await Promise.all([
        pythonCanvas({ kind: 'mark_failure', task_id: limited, exc: 'TimeLimitExceeded' }),
        pythonCanvas({ kind: 'mark_failure', task_id: lost, exc: 'WorkerLostError' }),
      ]);
      const limitError = await app
        .result(limited)
        .get({ timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(limitError).toBeInstanceOf(TaskTimeLimitError);
      expect(limitError).toMatchObject({ limitMs: 2_500 });
      const lostError = await app
        .result(lost)
        .get({ timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(lostError).toBeInstanceOf(WorkerLostError);
      expect(lostError).toMatchObject({ excMessage: [expect.stringMatching(/SIGKILL/)] });
    });
  });
});
