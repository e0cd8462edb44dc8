import { SerializationError, TaskFailedError } from '../errors';
import type { TaskMessage } from '../protocol/task-message';
import type { TaskDefinition } from '../task/task-definition';
import { propertyPath } from './json-guard';

/** Checks a call's arguments; throws a SerializationError naming the first that fails. */
export type ArgumentValidator = (
  definition: TaskDefinition,
  args: readonly unknown[],
  kwargs: Record<string, unknown>,
) => void;

/** The `typeof` each recorded primitive parameter type (design:paramtypes) stands for. */
const PRIMITIVES = new Map<unknown, string>([
  [Number, 'number'],
  [String, 'string'],
  [Boolean, 'boolean'],
  [BigInt, 'bigint'],
]);

/**
 * Checks each argument of a primitive parameter (`number`, `string`, `boolean`, `bigint`) against
 * the parameter's recorded type, and throws a {@link SerializationError} naming the argument
 * (`args[1] (count)`, `kwargs.count`) when it does not fit: a `number` parameter refuses `"12"`,
 * `{a: 1}`, and a BigInt (an integer beyond 2^53, which it could only hold rounded). `null` and
 * `undefined` pass (optional parameters); so do integers for a `bigint` parameter, which the
 * worker makes BigInts. Rest parameters and other types (classes, unions, `any`) are not checked.
 */
export function checkArgumentTypes(
  definition: TaskDefinition,
  args: readonly unknown[],
  kwargs: Record<string, unknown> = {},
): void {
  args.forEach((value, index) => checkArgument(definition, index, value, `args[${index}]`));
  for (const [key, value] of Object.entries(kwargs)) {
    const index = definition.paramNames.indexOf(key);
    if (index >= 0) checkArgument(definition, index, value, `kwargs${propertyPath(key)}`);
  }
}

/**
 * For a worker: why a received message's arguments do not fit the task's parameters, or
 * undefined. `stored` is the FAILURE to store, a Python built-in so a Python caller's `except`
 * catches it: `TypeError` for a primitive of the wrong type, as Python raises for a bad call;
 * `ValueError` for a DTO that `validate` (class-validator) refuses.
 */
export function argumentTypeError(
  definition: TaskDefinition,
  message: TaskMessage,
  validate?: ArgumentValidator,
): { reason: string; stored: TaskFailedError } | undefined {
  let excType = 'TypeError';
  try {
    checkArgumentTypes(definition, message.args, message.kwargs);
    excType = 'ValueError';
    validate?.(definition, message.args, message.kwargs);
    return undefined;
  } catch (error) {
    if (!(error instanceof SerializationError)) throw error;
    const stored = new TaskFailedError(message.headers.id, {
      excType,
      excMessage: [error.message],
      excModule: 'builtins',
      traceback: null,
    });
    return { reason: error.message, stored };
  }
}

function checkArgument(
  definition: TaskDefinition,
  index: number,
  value: unknown,
  path: string,
): void {
  if (definition.restIndex !== undefined && index >= definition.restIndex) return;
  if (value === null || value === undefined) return;
  const expected = PRIMITIVES.get(definition.paramTypes[index]);
  if (expected === undefined || typeof value === expected) return;
  if (expected === 'bigint' && typeof value === 'number' && Number.isInteger(value)) return;
  const name = definition.paramNames[index];
  const where = name !== undefined && !path.startsWith('kwargs') ? `${path} (${name})` : path;
  const hint =
    expected === 'number' && typeof value === 'bigint'
      ? ': an integer beyond 2^53 arrives as a BigInt; declare the parameter `bigint` to take it exactly'
      : '';
  throw new SerializationError(
    where,
    `${definition.label} takes a ${expected} there, got ${describe(value)}${hint}`,
  );
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
    case 'bigint':
      return `the BigInt ${value}`;
    case 'number':
    case 'boolean':
      return `the ${typeof value} ${String(value)}`;
    case 'object':
      return value instanceof Date ? 'a Date' : 'an object';
    default:
      return `a ${typeof value}`;
  }
}
