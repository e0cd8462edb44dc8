import 'reflect-metadata';
import { Type } from 'class-transformer';
import { Conveyor, defaults, SerializationError, Task, TaskService } from '@conveyor/core';

const { MAX_SEND_DEPTH } = defaults;

class Address {
  street!: string;
  city!: string;
  label(): string {
    return `${this.street}, ${this.city}`;
  }
}

class Person {
  name!: string;
  @Type(() => Date) born!: Date;
  @Type(() => Address) address!: Address;
  age(at: Date): number {
    return at.getUTCFullYear() - this.born.getUTCFullYear();
  }
}

class Summary {
  text!: string;
  @Type(() => Date) at!: Date;
  shout(): string {
    return this.text.toUpperCase();
  }
}

/** A value class that says how JSON should carry it, as URL, Decimal.js or Luxon do. */
class Money {
  constructor(readonly cents: number) {}
  toJSON(): string {
    return (this.cents / 100).toFixed(2);
  }
}

@TaskService({ name: 'people' })
class PeopleService {
  @Task()
  describe(person: Person, when: Date, tags: string[], extra: Record<string, unknown>): string {
    // These calls only work on real instances, rebuilt from the plain JSON.
    return `${person.name} (${person.age(when)}) at ${person.address.label()} ${tags.join('+')} ${JSON.stringify(extra)}`;
  }

  @Task({ returns: () => Summary })
  summarize(text: string): Summary {
    return Object.assign(new Summary(), { text, at: new Date('2026-01-01T00:00:00Z') });
  }

  @Task()
  echo(a: unknown, b?: unknown, c?: unknown): unknown[] {
    return [a, b ?? 'no-b', c ?? 'no-c'];
  }

  @Task()
  depthOf(value: unknown): number {
    let depth = 0;
    for (let v = value; typeof v === 'object' && v !== null; v = (v as { v: unknown }).v)
      depth += 1;
    return depth;
  }

  @Task()
  price(cents: number): Money {
    return new Money(cents);
  }

  @Task()
  bad(): unknown {
    return { callback: () => 1 };
  }
}

describe('Arguments and results', () => {
  let app: Conveyor;
  beforeEach(async () => {
    app = new Conveyor({ tasks: [PeopleService] });
    await app.worker({ handleSignals: false }).start();
  });
  afterEach(() => app.close());

  describe('round trip', () => {
    it('rebuilds DTOs with nested @Type classes and Dates as the declared parameter types', async () => {
      const person = Object.assign(new Person(), {
        name: 'Ada',
        born: new Date('1990-05-01T00:00:00Z'),
        address: Object.assign(new Address(), { street: '1 Main St', city: 'Oslo' }),
      });
      const result = await app
        .client(PeopleService)
        .describe.delay(person, new Date('2026-06-01T00:00:00Z'), ['a', 'b'], {
          n: 1,
          nested: [true, null],
        });
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toBe(
        'Ada (36) at 1 Main St, Oslo a+b {"n":1,"nested":[true,null]}',
      );
    });

    it('rebuilds the result as the class named by `returns`', async () => {
      const summary = await (
        await app.client(PeopleService).summarize.delay('hi')
      ).get({ timeoutMs: 5_000 });
      expect(summary).toBeInstanceOf(Summary);
      expect(summary.at).toBeInstanceOf(Date);
      expect(summary.shout()).toBe('HI');
    });

    it('maps keyword arguments onto parameters by name', async () => {
      const result = await app.send<unknown[]>('people.echo', [1], { kwargs: { c: 3 } });
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toEqual([1, 'no-b', 3]);
    });

    it('fails a call with an unknown keyword argument as a TypeError, like Python', async () => {
      const result = await app.send('people.echo', [1], { kwargs: { zzz: 3 } });
      await expect(result.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
        excType: 'TypeError',
        excMessage: ["people.echo() got an unexpected keyword argument 'zzz'"],
      });
    });

    it('drops trailing undefined arguments so optional parameters stay undefined', async () => {
      const result = await app.client(PeopleService).echo.delay('a', undefined, undefined);
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toEqual(['a', 'no-b', 'no-c']);
    });

    it('sends objects with toJSON() as JSON.stringify would, not as their fields', async () => {
      const result = await app
        .client(PeopleService)
        .echo.delay(
          new Money(150),
          { total: new Money(99), at: new URL('https://example.com/a') },
          [new Money(1)],
        );
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toEqual([
        '1.50',
        { total: '0.99', at: 'https://example.com/a' },
        ['0.01'],
      ]);
      const price = await app.client(PeopleService).price.delay(250);
      await expect(price.get({ timeoutMs: 5_000 })).resolves.toBe('2.50');
    });

    it('fails the task with SerializationError when its result cannot be sent', async () => {
      const result = await app.client(PeopleService).bad.delay();
      await expect(result.get({ timeoutMs: 5_000 })).rejects.toMatchObject({
        excType: 'SerializationError',
        excMessage: [
          'cannot serialize result.callback: a function cannot be sent; pass data, not code',
        ],
      });
    });
  });

  describe('refuses what JSON cannot carry at delay() time, naming the path, before publishing', () => {
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    const cases: Array<[string, unknown[], string]> = [
      [
        'a function deep in an object',
        [1, { owner: { callback: () => 1 } }],
        'args[1].owner.callback',
      ],
      ['a symbol', [Symbol('s')], 'args[0]'],
      ['a cycle', [cycle], 'args[0].self'],
      ['undefined in an array', [[1, undefined, 3]], 'args[0][1]'],
      ['undefined before other arguments', [undefined, 1], 'args[0]'],
      ['NaN', [{ n: Number.NaN }], 'args[0].n'],
      ['Infinity', [[Infinity]], 'args[0][0]'],
      ['a Map', [new Map([[1, 2]])], 'args[0]'],
      ['a Set', [{ s: new Set([1]) }], 'args[0].s'],
      ['a Promise', [Promise.resolve(1)], 'args[0]'],
      ['an invalid Date', [new Date('nope')], 'args[0]'],
      // eslint-disable-next-line no-sparse-arrays
      ['a hole in an array', [[1, , 3]], 'args[0][1]'],
      ['an Error', [{ cause: new Error('boom') }], 'args[0].cause'],
      ['a Buffer (its toJSON would send an array of numbers)', [Buffer.from('ab')], 'args[0]'],
      [
        'a toJSON() that throws',
        [
          {
            toJSON: () => {
              throw new Error('no');
            },
          },
        ],
        'args[0]',
      ],
      ['a key that is not an identifier', [{ 'two words': () => 0 }], 'args[0]["two words"]'],
    ];
    it.each(cases)('%s', async (_label, args, path) => {
      const published = jest.spyOn(app.transport, 'publish');
      const sent = app.send('people.echo', args);
      await expect(sent).rejects.toBeInstanceOf(SerializationError);
      await expect(sent).rejects.toMatchObject({ path, code: 'CONVEYOR_ERR_SERIALIZATION' });
      expect(published).not.toHaveBeenCalled();
    });

    it('refuses a bad keyword argument with its path', async () => {
      await expect(app.send('people.echo', [], { kwargs: { fn: () => 1 } })).rejects.toMatchObject({
        path: 'kwargs.fn',
      });
    });

    it('accepts nesting up to what a worker decodes, and refuses one level more', async () => {
      const nested = (levels: number): unknown => {
        let value: unknown = 'leaf';
        for (let i = 0; i < levels; i += 1) value = { v: value };
        return value;
      };
      // The deepest argument delay() takes runs on a worker with the default decode limit.
      const deepest = await app.send('people.depthOf', [nested(MAX_SEND_DEPTH)]);
      await expect(deepest.get({ timeoutMs: 5_000 })).resolves.toBe(MAX_SEND_DEPTH);
      await expect(app.send('people.depthOf', [nested(MAX_SEND_DEPTH + 1)])).rejects.toMatchObject({
        code: 'CONVEYOR_ERR_SERIALIZATION',
        message: expect.stringContaining(`nests deeper than ${MAX_SEND_DEPTH} levels`),
      });
    });

    it('allows shared references that are not cycles', async () => {
      const shared = { v: 1 };
      const result = await app.send('people.echo', [[shared, shared]]);
      await expect(result.get({ timeoutMs: 5_000 })).resolves.toEqual([
        [{ v: 1 }, { v: 1 }],
        'no-b',
        'no-c',
      ]);
    });
  });
});
