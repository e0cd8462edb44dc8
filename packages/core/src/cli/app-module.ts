import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Conveyor } from '../app/conveyor';
import { ConfigError } from '../errors';
import type { WorkerLogger } from '../logging/worker-logger';
import type { ClassType } from '../task/task-options';

/**
 * What `--app` names: a module that exports the app and, when its task services take
 * constructor arguments, what the worker needs to build them.
 */
export interface AppModule {
  /** Absolute path of the module (task threads load it again). */
  path: string;
  /** Exported as `app` or as the default export. */
  app: Conveyor;
  /**
   * Builds the task service instances exported as `instances`: an array, or a function (sync or
   * async) that returns one. Only `conveyor worker` calls it, once, when it starts: a producer
   * importing the same module, or `conveyor dlq`, builds nothing.
   */
  loadInstances?: () => Promise<object[]>;
  /** Exported as `resolve`: builds an instance of a task class, e.g. from a DI container. */
  resolve?: (cls: ClassType) => object;
  /** Exported as `logger`: the pino logger (or alike) the worker logs with. */
  logger?: WorkerLogger;
}

/**
 * A real dynamic `import()`: TypeScript compiles `import()` to `require()` for CommonJS output,
 * which cannot load ES modules or file URLs.
 */
const importModule = new Function('specifier', 'return import(specifier)') as (
  specifier: string,
) => Promise<Record<string, unknown>>;

/** Loads the `--app` module and checks what it exports; ConfigError names what is wrong. */
export async function loadAppModule(modulePath: string): Promise<AppModule> {
  const path = resolvePath(process.cwd(), modulePath);
  const loaded = await importApp(modulePath, path);
  const fallback = isObject(loaded.default) ? loaded.default : {};
  const exported = (name: string): unknown => loaded[name] ?? fallback[name];

  const app = [loaded.app, loaded.default, fallback.app].find((c) => c instanceof Conveyor);
  if (!(app instanceof Conveyor)) {
    throw new ConfigError(
      `${modulePath} exports no Conveyor app (export it as \`app\` or as the default export)`,
    );
  }
  const module: AppModule = { path, app };

  const instances = exported('instances');
  if (instances !== undefined) {
    module.loadInstances = async () => {
      const list: unknown = typeof instances === 'function' ? await instances() : instances;
      if (!Array.isArray(list) || !list.every(isObject)) {
        throw new ConfigError(
          `${modulePath}: \`instances\` must be an array of task service instances, or a function returning one`,
        );
      }
      return list;
    };
  }

  const resolve = exported('resolve');
  if (resolve !== undefined) {
    if (typeof resolve !== 'function') {
      throw new ConfigError(`${modulePath}: \`resolve\` must be a function (cls) => instance`);
    }
    module.resolve = resolve as (cls: ClassType) => object;
  }

  const logger = exported('logger');
  if (logger !== undefined) {
    const methods = ['debug', 'info', 'warn', 'error'] as const;
    if (!isObject(logger) || !methods.every((m) => typeof logger[m] === 'function')) {
      throw new ConfigError(
        `${modulePath}: \`logger\` must be a pino logger or have its debug, info, warn and error methods`,
      );
    }
    module.logger = logger as unknown as WorkerLogger;
  }
  return module;
}

/**
 * Imports the module at `path`; the two ways a path commonly goes wrong (no such file, a `.ts`
 * file Node cannot load) become a ConfigError that says what to do. An error the module itself
 * throws while loading passes through as it is.
 */
async function importApp(modulePath: string, path: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return await importModule(url);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const message = error instanceof Error ? error.message : '';
    if (code === 'ERR_UNKNOWN_FILE_EXTENSION') {
      throw new ConfigError(
        `--app ${modulePath}: Node cannot load this file type; compile the app first (tsc) and ` +
          'pass the compiled .js file',
      );
    }
    // Only when the missing module is the app module itself, not something it imports.
    if (code === 'ERR_MODULE_NOT_FOUND' && (message.includes(url) || message.includes(path))) {
      throw new ConfigError(
        `--app ${modulePath}: no such module (${path}); give the path of the compiled app ` +
          'module, relative to the current directory (compile it first if it is TypeScript)',
      );
    }
    throw error;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
