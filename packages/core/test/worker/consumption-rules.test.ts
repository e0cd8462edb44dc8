import { InvalidArgumentError } from 'commander';
import { ConfigError, Conveyor, defaults } from '@conveyor/core';
import { OptionChecker, PREFETCH_RULE } from '@conveyor/core/plugin';
import { numberArgument } from '../../src/cli/option-parsers';
import { describeNumberRule } from '../../src/plugin/option-checks';
import { checkWorkerLimits, WORKER_LIMITS } from '../../src/worker/consumption-rules';

const LIMITS = Object.keys(WORKER_LIMITS) as Array<keyof typeof WORKER_LIMITS>;

describe('the worker limits: concurrency, prefetchMultiplier, maxDeliveries', () => {
  it('take their defaults from defaults.ts when not given', () => {
    expect(checkWorkerLimits({})).toEqual({
      concurrency: defaults.DEFAULT_CONCURRENCY,
      prefetchMultiplier: defaults.DEFAULT_PREFETCH_MULTIPLIER,
      maxDeliveries: defaults.DEFAULT_MAX_DELIVERIES,
    });
  });

  it('pass whole numbers from 1 through', () => {
    expect(
      checkWorkerLimits({ concurrency: 1, prefetchMultiplier: 4, maxDeliveries: 100 }),
    ).toEqual({ concurrency: 1, prefetchMultiplier: 4, maxDeliveries: 100 });
  });

  const bad: Array<[unknown, string]> = [
    [0, '0'],
    [-2, '-2'],
    [1.5, '1.5'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
    ['4', "'4'"],
  ];
  it.each(LIMITS.flatMap((name) => bad.map(([value, shown]) => [name, value, shown] as const)))(
    'refuse %s = %p with a ConfigError naming the option and the value',
    (name, value, shown) => {
      const call = () => checkWorkerLimits({ [name]: value } as never);
      expect(call).toThrow(ConfigError);
      expect(call).toThrow(`Worker: \`${name}\` must be an integer from 1 (got ${shown})`);
    },
  );

  it('are what the worker checks its options against', () => {
    const app = new Conveyor();
    expect(() => app.worker({ concurrency: 0 })).toThrow(
      'Worker: `concurrency` must be an integer from 1 (got 0)',
    );
    expect(() => app.worker({ prefetchMultiplier: 2.5 })).toThrow(
      'Worker: `prefetchMultiplier` must be an integer from 1 (got 2.5)',
    );
    expect(() => app.worker({ maxDeliveries: -1 })).toThrow(
      'Worker: `maxDeliveries` must be an integer from 1 (got -1)',
    );
  });

  it.each(LIMITS)(
    'are what `conveyor worker` checks its flag for %s against, in the same words',
    (name) => {
      const parse = numberArgument(WORKER_LIMITS[name]);
      expect(parse('3')).toBe(3);
      for (const text of ['0', '1.5', 'ten', '-1']) {
        expect(() => parse(text)).toThrow(InvalidArgumentError);
        expect(() => parse(text)).toThrow('must be an integer from 1');
      }
    },
  );
});

describe('PREFETCH_RULE, for transports through the plugin kit', () => {
  it('allows whole numbers from 1, and a transport narrows it with its own bound', () => {
    const check = new OptionChecker('SomeTransport');
    expect(check.number('prefetch', 1, PREFETCH_RULE)).toBe(1);
    expect(() => check.number('prefetch', 0, PREFETCH_RULE)).toThrow(
      'SomeTransport: `prefetch` must be an integer from 1 (got 0)',
    );
    const capped = { ...PREFETCH_RULE, max: 100 };
    expect(check.number('prefetch', 100, capped)).toBe(100);
    expect(() => check.number('prefetch', 101, capped)).toThrow(
      'SomeTransport: `prefetch` must be an integer from 1 to 100 (got 101)',
    );
  });

  it('holds for every prefetch a worker asks for: concurrency × prefetchMultiplier', () => {
    const check = new OptionChecker('Worker');
    const { concurrency, prefetchMultiplier } = checkWorkerLimits({});
    expect(check.number('prefetch', concurrency * prefetchMultiplier, PREFETCH_RULE)).toBe(
      concurrency * prefetchMultiplier,
    );
  });
});

describe('describeNumberRule', () => {
  it.each([
    [{}, 'a number'],
    [{ min: 0 }, 'a number from 0'],
    [{ integer: true, min: 1 }, 'an integer from 1'],
    [{ integer: true, min: 1, max: 65_535 }, 'an integer from 1 to 65535'],
    [{ max: 1 }, 'a number up to 1'],
  ])('%j reads "%s"', (rule, words) => {
    expect(describeNumberRule(rule)).toBe(words);
  });
});
