import {
  AsyncResult,
  ConfigError,
  Conveyor,
  MemoryResultBackend,
  MemoryTransport,
  SerializationError,
  Task,
  TaskService,
  type PublishOptions,
  type Signature,
  type TransportMessage,
} from '@conveyor/core';

class Options {
  locale!: string;
  sendAt?: Date;
}

class Receipt {
  messageId!: string;
}

@TaskService({ name: 'email', queue: 'emails' })
class EmailService {
  constructor(private readonly prefix = 'm') {}

  @Task()
  async sendWelcome(userId: string, opts: Options): Promise<Receipt> {
    return { messageId: `${this.prefix}-${userId}-${opts.locale}` };
  }

  @Task()
  count(items: number[]): number {
    return items.length;
  }

  notATask(): string {
    return 'x';
  }
}

@Task({ name: 'math.add' })
class Add {
  run(a: number, b: number): number {
    return a + b;
  }
}

/** Compile-time equality of two types; `tsc` checks these lines in `npm test`. */
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}

describe('Typed client proxies', () => {
  const app = new Conveyor({ tasks: [EmailService, Add] });
  afterAll(() => app.close());

  it('types delay(), applyAsync() and s() from the method signature', async () => {
    const email = app.client(EmailService);
    const sent = await email.sendWelcome.delay('u1', { locale: 'en' });
    assertType<Equals<typeof sent, AsyncResult<Receipt>>>();
    const added = await app.client(Add).delay(4, 5);
    assertType<Equals<typeof added, AsyncResult<number>>>();
    const counted = await email.count.applyAsync([[1, 2, 3]], { countdownMs: 0 });
    assertType<Equals<typeof counted, AsyncResult<number>>>();
    const signature = app.client(Add).s(1, 2);
    assertType<Equals<typeof signature, Signature<number>>>();
    for (const handle of [sent, added, counted]) expect(handle).toBeInstanceOf(AsyncResult);
    expect(signature.task).toBe('math.add');
    expect(email.sendWelcome.taskName).toBe('email.sendWelcome');
    expect(app.client(Add).taskName).toBe('math.add');
  });

  it('rejects wrong argument types and counts at compile time (and primitive types at run time)', async () => {
    const email = app.client(EmailService);
    const add = app.client(Add);
    // Each line below must fail to compile; `tsc --noEmit` in `npm test` checks that it does.
    // @ts-expect-error a number where a string is declared
    await expect(email.sendWelcome.delay(42, { locale: 'en' })).rejects.toThrow(SerializationError);
    // @ts-expect-error a missing required argument
    await expect(add.delay(1)).resolves.toBeDefined();
    // @ts-expect-error a string where a number is declared (not checked at run time: run() has no
    // decorator of its own, so TypeScript recorded no parameter types for it)
    await expect(add.applyAsync(['1', 2])).resolves.toBeDefined();
    // @ts-expect-error an object missing a required field
    expect(() => email.sendWelcome.s('u1', {})).not.toThrow();
    // @ts-expect-error private members are not tasks
    expect(email.prefix).toBeUndefined();
  });

  it('refuses a class that is not registered and a method that is not a task', () => {
    @Task({ name: 'other' })
    class Other {
      run(): void {}
    }
    expect(() => app.client(Other)).toThrow(ConfigError);
    expect(() => app.client(EmailService).notATask).toThrow(
      'EmailService.notATask is not a @Task method',
    );
    // What every object has still works: logging a client must not throw.
    expect(String(app.client(EmailService))).toBe('[object Object]');
  });

  it("serializes a signature to Celery's signature dict", () => {
    const signature = app.client(Add).s(1, 2).set({ queue: 'math', countdownMs: 1_500 });
    expect(JSON.parse(JSON.stringify(signature))).toEqual({
      task: 'math.add',
      args: [1, 2],
      kwargs: {},
      options: { queue: 'math', countdown: 1.5 },
      subtask_type: null,
      immutable: false,
    });
  });

  it('sends a signature', async () => {
    await app.worker({ handleSignals: false }).start();
    const result = await app.client(Add).s(20, 22).delay();
    await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe(42);
  });
});

describe('telling the backend of a send', () => {
  /** A memory backend that records `watch` calls and what the transport had at each. */
  class WatchingBackend extends MemoryResultBackend {
    readonly watched: Array<{ id: string; handedOver: number; confirmed: number }> = [];
    constructor(private readonly transport: CountingTransport) {
      super();
    }
    watch(taskId: string): void {
      this.watched.push({
        id: taskId,
        handedOver: this.transport.published,
        confirmed: this.transport.confirmed,
      });
    }
  }
  class CountingTransport extends MemoryTransport {
    published = 0;
    confirmed = 0;
    override async publish(message: TransportMessage, options: PublishOptions): Promise<void> {
      this.published += 1;
      await super.publish(message, options);
      this.confirmed += 1;
    }
  }

  it('watches a task whose result is kept once its publish is handed over and before it is confirmed, and not one that ignores its result', async () => {
    const broker = new CountingTransport();
    const backend = new WatchingBackend(broker);
    const app = new Conveyor({ broker, backend, tasks: [Add] });
    try {
      const kept = await app.client(Add).delay(1, 2);
      await app.client(Add).applyAsync([3, 4], { ignoreResult: true });
      // Handed over first, so the task's own socket write goes before the backend's.
      expect(backend.watched).toEqual([{ id: kept.id, handedOver: 1, confirmed: 0 }]);
      expect(broker.published).toBe(2);
    } finally {
      await app.close();
    }
  });
});
