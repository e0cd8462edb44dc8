import { plainToInstance } from 'class-transformer';
import { ConfigError, SerializationError } from '../errors';
import type { ClassType } from '../task/task-options';
import { isPassThroughType } from './argument-codec';
import type { ArgumentValidator } from './argument-types';
import { propertyPath } from './json-guard';

/** The part of class-validator this uses. */
interface ClassValidatorModule {
  validateSync(object: object, options?: { forbidUnknownValues?: boolean }): ValidationErrorLike[];
}

interface ValidationErrorLike {
  property: string;
  constraints?: Record<string, string>;
  children?: ValidationErrorLike[];
}

/**
 * The validator of `validate: true`: each argument of a class parameter (a DTO) is made an
 * instance of it (class-transformer) and checked with class-validator's decorators, as NestJS's
 * ValidationPipe does. class-validator is an optional peer dependency: a ConfigError says so
 * when it is not installed.
 */
export function classValidatorOf(): ArgumentValidator {
  let validator: ClassValidatorModule;
  try {
    // Loaded only when asked for: apps that do not validate need not install it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    validator = require('class-validator') as ClassValidatorModule;
  } catch (error) {
    throw new ConfigError('validate: true needs class-validator: npm install class-validator', {
      cause: error,
    });
  }
  return (definition, args, kwargs) => {
    const check = (index: number, value: unknown, path: string): void => {
      const type = definition.paramTypes[index];
      if (definition.restIndex !== undefined && index >= definition.restIndex) return;
      if (typeof value !== 'object' || value === null || typeof type !== 'function') return;
      if (isPassThroughType(type) || type === Date) return;
      const instance = value instanceof type ? value : plainToInstance(type as ClassType, value);
      const [first] = flatten(validator.validateSync(instance as object), path);
      if (first) throw new SerializationError(first.path, `fails validation: ${first.message}`);
    };
    args.forEach((value, index) => check(index, value, `args[${index}]`));
    for (const [key, value] of Object.entries(kwargs)) {
      const index = definition.paramNames.indexOf(key);
      if (index >= 0) check(index, value, `kwargs${propertyPath(key)}`);
    }
  };
}

/** Each failed constraint of class-validator's nested errors, with its path. */
function flatten(
  errors: ValidationErrorLike[],
  path: string,
): Array<{ path: string; message: string }> {
  return errors.flatMap((error) => {
    const at = `${path}${propertyPath(error.property)}`;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ path: at, message }));
    return [...own, ...flatten(error.children ?? [], at)];
  });
}
