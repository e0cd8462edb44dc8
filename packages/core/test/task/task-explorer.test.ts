import { ConfigError, Conveyor, Task, TaskService } from '@conveyor/core';

@TaskService({ name: 'mail', queue: 'emails' })
class MailService {
  @Task()
  send(to: string): string {
    return to;
  }

  @Task({ name: 'mail.custom', queue: 'urgent' })
  urgent(): void {}

  helper(): void {}
}

@Task({ name: 'math.add' })
class Add {
  run(a: number, b: number): number {
    return a + b;
  }
}

function configError(build: () => unknown): ConfigError {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('Task declarations', () => {
  describe('are read into definitions', () => {
    it('names service methods <service>.<method> and uses the service queue', () => {
      const app = new Conveyor({ tasks: [MailService, Add] });
      expect(app.task('mail.send')).toMatchObject({
        queue: 'emails',
        method: 'send',
        kind: 'service',
        label: 'MailService.send',
      });
      expect(app.task('mail.custom')).toMatchObject({ queue: 'urgent', method: 'urgent' });
      expect(app.task('mail.helper')).toBeUndefined();
    });

    it('makes a @Task class a task run by run(), on the default queue', () => {
      const app = new Conveyor({ tasks: [Add], defaultQueue: 'math' });
      expect(app.task('math.add')).toMatchObject({ queue: 'math', method: 'run', kind: 'class' });
    });

    it('records parameter types and names for rebuilding arguments', () => {
      const app = new Conveyor({ tasks: [MailService, Add] });
      expect(app.task('mail.send')!.paramTypes).toEqual([String]);
      expect(app.task('mail.send')!.paramNames).toEqual(['to']);
      expect(app.task('math.add')!.paramNames).toEqual(['a', 'b']);
    });

    it('reads parameter types of a task class whose run() is decorated too', () => {
      @Task({ name: 'typed.run' })
      class TypedRun {
        @Task()
        run(when: Date, count: number): string {
          return `${when.toISOString()} ${count}`;
        }
      }
      const app = new Conveyor({ tasks: [TypedRun] });
      expect(app.task('typed.run')!.paramTypes).toEqual([Date, Number]);
    });

    it('refuses @Task on a method other than run() of a task class', () => {
      @Task({ name: 'stray' })
      class Stray {
        run(): void {}
        @Task()
        other(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Stray] })).message).toContain(
        'Stray.other has @Task, but Stray is a @Task class',
      );
    });
  });

  describe('refuses mistakes when the app is built, naming the class and method', () => {
    it('duplicate task names', () => {
      @Task({ name: 'math.add' })
      class AddAgain {
        run(): number {
          return 0;
        }
      }
      const error = configError(() => new Conveyor({ tasks: [Add, AddAgain] }));
      expect(error.message).toContain("duplicate task name 'math.add'");
      expect(error.message).toContain('Add.run');
      expect(error.message).toContain('AddAgain.run');
    });

    it('a duplicate between a service method name and a class task', () => {
      @Task({ name: 'mail.send' })
      class Clash {
        run(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [MailService, Clash] })).message).toMatch(
        /MailService\.send.*Clash\.run/,
      );
    });

    it('a @Task class without run()', () => {
      @Task({ name: 'no.run' })
      class NoRun {
        execute(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [NoRun] })).message).toBe(
        '@Task class NoRun has no run() method',
      );
    });

    it('a @Task class without a name', () => {
      @Task()
      class Nameless {
        run(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Nameless] })).message).toContain(
        'Nameless needs a name',
      );
    });

    it('@Task methods on a class without @TaskService', () => {
      class Plain {
        @Task()
        work(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Plain] })).message).toContain(
        'Plain.work has @Task, but Plain has no @TaskService decorator',
      );
    });

    it('a @TaskService without @Task methods', () => {
      @TaskService({ name: 'empty' })
      class Empty {
        nothing(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Empty] })).message).toContain(
        'Empty has no @Task methods',
      );
    });

    it('a class with no decorator at all', () => {
      class Undecorated {}
      expect(configError(() => new Conveyor({ tasks: [Undecorated] })).message).toContain(
        'Undecorated is neither a @TaskService nor a @Task class',
      );
    });

    it('a class listed twice', () => {
      expect(configError(() => new Conveyor({ tasks: [Add, Add] })).message).toContain(
        'Add is listed twice',
      );
    });

    it('an out-of-range priority', () => {
      @TaskService({ name: 'p' })
      class Prioritized {
        @Task({ priority: 300 })
        go(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Prioritized] })).message).toContain(
        'Prioritized.go: priority',
      );
    });

    it('a maxDeliveries below 1 or not an integer', () => {
      @TaskService({ name: 'm' })
      class Capped {
        @Task({ maxDeliveries: 0.5 })
        go(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Capped] })).message).toContain(
        'Capped.go: maxDeliveries',
      );
    });

    it('a negative time limit', () => {
      @TaskService({ name: 't' })
      class Limited {
        @Task({ timeLimitMs: -1 })
        go(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Limited] })).message).toContain(
        'Limited.go: timeLimitMs',
      );
    });

    it('a service with an empty name', () => {
      @TaskService({ name: ' ' })
      class Blank {
        @Task()
        go(): void {}
      }
      expect(configError(() => new Conveyor({ tasks: [Blank] })).message).toContain(
        '@TaskService on Blank needs a non-empty name',
      );
    });

    it('a service whose constructor needs dependencies, when the worker has no instance for it', () => {
      @TaskService({ name: 'deps' })
      class NeedsDeps {
        constructor(private readonly dep: { ping(): string }) {}
        @Task()
        go(): string {
          return this.dep.ping();
        }
      }
      const app = new Conveyor({ tasks: [NeedsDeps] });
      expect(configError(() => app.worker({ handleSignals: false })).message).toContain(
        'NeedsDeps takes constructor arguments',
      );
      expect(() =>
        app.worker({ handleSignals: false, instances: [new NeedsDeps({ ping: () => 'pong' })] }),
      ).not.toThrow();
    });

    it("not a service on another queue: a worker for 'emails' needs no instance of 'billing'", async () => {
      @TaskService({ name: 'billing', queue: 'billing' })
      class Billing {
        constructor(private readonly ledger: { total(): number }) {}
        @Task()
        total(): number {
          return this.ledger.total();
        }
      }
      @TaskService({ name: 'email', queue: 'emails' })
      class Email {
        constructor(private readonly mailer: { send(to: string): string }) {}
        @Task()
        welcome(to: string): string {
          return this.mailer.send(to);
        }
      }
      const app = new Conveyor({ tasks: [Billing, Email] });
      try {
        const worker = app.worker({
          handleSignals: false,
          queues: ['emails'],
          instances: [new Email({ send: (to) => `sent to ${to}` })],
        });
        await worker.start();
        const sent = await app.client(Email).welcome.delay('ada');
        await expect(sent.get({ timeoutMs: 5_000 })).resolves.toBe('sent to ada');
        // A billing task sent to this worker's queue anyway fails when it runs, saying why.
        const stray = await app.client(Billing).total.applyAsync([], { queue: 'emails' });
        await expect(stray.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
          excType: 'ConfigError',
          excMessage: [expect.stringContaining('Billing takes constructor arguments')],
        });
        await worker.stop();
      } finally {
        await app.close();
      }
    });
  });
});
