import { instanceToPlain, plainToInstance } from 'class-transformer';
import { SerializationError } from '../errors';
import type { TaskDefinition } from '../task/task-definition';
import type { ClassType } from '../task/task-options';
import { checkArgumentTypes } from './argument-types';
import { assertSendable, jsonReplacement } from './json-guard';

/** Types that design:paramtypes reports for values JSON already carries as they are. */
const PASS_THROUGH: ReadonlySet<unknown> = new Set([
  Object,
  String,
  Number,
  Boolean,
  Array,
  Function,
  Promise,
  Symbol,
  BigInt,
  Map,
  Set,
  undefined,
]);

/** Whether arguments of this recorded type travel as they are (primitives, arrays, `any`). */
export function isPassThroughType(type: unknown): boolean {
  return PASS_THROUGH.has(type);
}

/**
 * Positional arguments for the wire: checked (against the task's primitive parameter types too,
 * when its definition is known here), trailing `undefined`s dropped, instances made plain.
 */
export function argsToWire(args: readonly unknown[], definition?: TaskDefinition): unknown[] {
  if (definition) checkArgumentTypes(definition, args);
  let end = args.length;
  while (end > 0 && args[end - 1] === undefined) end -= 1;
  const kept = args.slice(0, end);
  kept.forEach((arg, index) => {
    if (arg === undefined) {
      throw new SerializationError(
        `args[${index}]`,
        'undefined before other arguments would arrive as null; pass null',
      );
    }
    assertSendable(arg, `args[${index}]`);
  });
  return kept.map(toPlain);
}

/** Keyword arguments for the wire. */
export function kwargsToWire(
  kwargs: Record<string, unknown>,
  definition?: TaskDefinition,
): Record<string, unknown> {
  if (definition) checkArgumentTypes(definition, [], kwargs);
  assertSendable(kwargs, 'kwargs');
  return toPlain(kwargs) as Record<string, unknown>;
}

/** A task's return value (or another value it stores, named by `path`) for the wire. */
export function resultToWire(value: unknown, path = 'result'): unknown {
  assertSendable(value, path);
  return value === undefined ? null : toPlain(value);
}

/** Rebuilds a value as an instance of `type` when it is a class (or Date) and the value fits. */
export function fromWire(value: unknown, type: unknown): unknown {
  if (type === BigInt && typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (value === null || value === undefined || PASS_THROUGH.has(type)) return value;
  if (type === Date) {
    return typeof value === 'string' || typeof value === 'number' ? new Date(value) : value;
  }
  if (typeof type === 'function' && typeof value === 'object') {
    return plainToInstance(type as ClassType, value);
  }
  return value;
}

/**
 * A task's result rebuilt as its `returns` class. Beyond {@link fromWire}, fields are converted
 * to their recorded property types (class-transformer's implicit conversion): a `Date` field
 * carrying any decorator (`@IsDate()`, `@Expose()`...) becomes a Date. TypeScript records no
 * type for an undecorated field, so one stays the ISO string JSON carried; `@Type(() => Date)`
 * converts it too.
 */
export function resultFromWire(value: unknown, type: ClassType): unknown {
  if (typeof value !== 'object' || value === null || PASS_THROUGH.has(type) || type === Date) {
    return fromWire(value, type);
  }
  return plainToInstance(type, value, { enableImplicitConversion: true });
}

/** Problem with the arguments of a call, raised on the worker as a TypeError, like Python does. */
export class ArgumentMismatchError extends TypeError {
  override name = 'TypeError';
}

/**
 * Arguments for the method from a message's args and kwargs: keyword arguments are placed by
 * parameter name, then each argument is rebuilt as its declared type.
 */
export function argumentsFromWire(
  definition: TaskDefinition,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
): unknown[] {
  const values = [...args];
  for (const [key, value] of Object.entries(kwargs)) {
    const index = definition.paramNames.indexOf(key);
    if (index < 0 || (definition.restIndex !== undefined && index >= definition.restIndex)) {
      throw new ArgumentMismatchError(
        `${definition.name}() got an unexpected keyword argument '${key}'`,
      );
    }
    if (index < args.length) {
      throw new ArgumentMismatchError(
        `${definition.name}() got multiple values for argument '${key}'`,
      );
    }
    while (values.length < index) values.push(undefined);
    values[index] = value;
  }
  return values.map((value, index) =>
    definition.restIndex !== undefined && index >= definition.restIndex
      ? value
      : fromWire(value, definition.paramTypes[index]),
  );
}

/**
 * The value as JSON will carry it. Objects with `toJSON()` become what it returns (class-transformer
 * ignores toJSON and would send their fields instead); arrays and plain objects are walked so
 * that such objects inside them are found too; other class instances go through
 * class-transformer, which honours its decorators (`@Exclude`, `@Expose`, `@Transform`).
 */
function toPlain(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  const replacement = jsonReplacement(value);
  if (replacement !== value) return plainOf(replacement);
  return plainOf(value);
}

/** {@link toPlain} of a value whose own `toJSON` was already applied (JSON applies it once). */
function plainOf(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map(toPlain);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const plain: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) plain[key] = toPlain(child);
    return plain;
  }
  return instanceToPlain(value);
}
