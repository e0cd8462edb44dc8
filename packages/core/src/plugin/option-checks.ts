import { ConfigError } from '../errors';

/** What a numeric option may be. Both bounds are inclusive. */
export interface NumberRule {
  /** Smallest value allowed. @defaultValue no lower bound */
  readonly min?: number;
  /** Largest value allowed. @defaultValue no upper bound (but always finite) */
  readonly max?: number;
  /** Whether only whole numbers are allowed. @defaultValue false */
  readonly integer?: boolean;
}

/** A numeric option's rule and the value it takes when not given. */
export interface NumberOption extends NumberRule {
  /** The value when the option is undefined (checked too). */
  readonly default: number;
}

/** What a string option may be. */
export interface StringRule {
  /** Whether `''` is refused. @defaultValue false */
  readonly nonEmpty?: boolean;
  /** Longest length allowed. @defaultValue no limit */
  readonly maxLength?: number;
  /** A pattern the whole value must match, and how to say so in the error. */
  readonly pattern?: { readonly test: RegExp; readonly description: string };
}

/**
 * Checks the options of one transport or result backend, so that every package refuses a bad
 * value the same way: a {@link ConfigError} that names the class, the option and what it must
 * be, e.g. ``AmqpTransport: `publishTimeoutMs` must be a number from 1 (got -5)``.
 *
 * @example
 * ```ts
 * const check = new OptionChecker('MyTransport');
 * this.timeoutMs = check.number('timeoutMs', options.timeoutMs ?? 5_000, { min: 1 });
 * ```
 */
export class OptionChecker {
  /** @param owner the class whose options these are, as users write it */
  constructor(readonly owner: string) {}

  /** `value` if it is a finite number within `rule`; otherwise a {@link ConfigError}. */
  number(name: string, value: unknown, rule: NumberRule = {}): number {
    if (!keepsNumberRule(value, rule)) {
      this.fail(`\`${name}\` must be ${describeNumberRule(rule)} (got ${describe(value)})`);
    }
    return value;
  }

  /** `value`, or `fallback` when it is undefined, checked by {@link number}. */
  optionalNumber(name: string, value: unknown, fallback: number, rule: NumberRule = {}): number {
    return this.number(name, value === undefined ? fallback : value, rule);
  }

  /**
   * Several numeric options at once: for each key of `rules`, the value in `options` (or the
   * rule's default) checked by {@link number}. `prefix` goes before each name in errors, for
   * nested options (`'reconnect.'`).
   *
   * @example
   * ```ts
   * const { timeoutMs, retries } = check.numbers(options, {
   *   timeoutMs: { default: 5_000, min: 1 },
   *   retries: { default: 3, min: 0, integer: true },
   * });
   * ```
   */
  numbers<K extends string>(
    options: { readonly [key in NoInfer<K>]?: unknown },
    rules: { readonly [key in K]: NumberOption },
    prefix = '',
  ): { [key in K]: number } {
    const out = {} as { [key in K]: number };
    for (const key of Object.keys(rules) as K[]) {
      out[key] = this.optionalNumber(prefix + key, options[key], rules[key].default, rules[key]);
    }
    return out;
  }

  /** `value` if it is a string within `rule`; otherwise a {@link ConfigError}. */
  string(name: string, value: unknown, rule: StringRule = {}): string {
    if (typeof value !== 'string')
      this.fail(`\`${name}\` must be a string (got ${describe(value)})`);
    if (rule.nonEmpty && value.length === 0) this.fail(`\`${name}\` must not be empty`);
    if (rule.maxLength !== undefined && value.length > rule.maxLength) {
      this.fail(`\`${name}\` must be at most ${rule.maxLength} characters`);
    }
    if (rule.pattern && !rule.pattern.test.test(value)) {
      this.fail(`\`${name}\` must be ${rule.pattern.description}`);
    }
    return value;
  }

  /** `value` if it is one of `allowed`; otherwise a {@link ConfigError} listing them. */
  oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      const list = allowed.map((a) => `'${a}'`).join(' or ');
      this.fail(`${name} must be ${list}, not ${describe(value)}`);
    }
    return value as T;
  }

  /** Throws a {@link ConfigError} with the owner's name before `message`. */
  fail(message: string): never {
    throw new ConfigError(`${this.owner}: ${message}`);
  }
}

/** Whether `value` is a finite number within `rule`. */
export function keepsNumberRule(value: unknown, rule: NumberRule): value is number {
  const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, integer = false } = rule;
  return (
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    value >= min &&
    value <= max
  );
}

/**
 * What `rule` allows, in the words {@link OptionChecker} uses after "must be": `an integer from 1
 * to 65535`, `a number from 0`, `a number`.
 */
export function describeNumberRule(rule: NumberRule): string {
  const { min, max, integer = false } = rule;
  const kind = integer ? 'an integer' : 'a number';
  const from = min !== undefined && Number.isFinite(min) ? ` from ${min}` : '';
  const to = max !== undefined && Number.isFinite(max) ? ` ${from ? 'to' : 'up to'} ${max}` : '';
  return `${kind}${from}${to}`;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}
