import { hostname as osHostname } from 'node:os';
import { ConfigError } from '../errors';

/** The name part Celery gives a node name without one (`celery@…`); ours is `conveyor`. */
const DEFAULT_NAME = 'conveyor';

/**
 * Expands `--hostname` as Celery's worker does: a value without `@` is the host part of
 * `conveyor@<value>`, then `%h` is the host name with its domain, `%n` the host name without
 * it, `%d` the domain, `%i` the pool process index (`0`: a Conveyor worker is one process) and
 * `%I` the same with a leading `-` (empty here), `%%` a `%`. So `-n worker1@%h` stays the same
 * across restarts, unlike the default `conveyor-<pid>@<host>`.
 */
export function expandNodeName(template: string, host: string = osHostname()): string {
  const name = template.includes('@') ? template : `${DEFAULT_NAME}@${template}`;
  const dot = host.indexOf('.');
  const keys: Record<string, string> = {
    h: host,
    n: dot < 0 ? host : host.slice(0, dot),
    d: dot < 0 ? '' : host.slice(dot + 1),
    i: '0',
    I: '',
    '%': '%',
  };
  return name.replace(/%(.)/g, (_, key: string) => {
    const value = keys[key];
    if (value === undefined) {
      throw new ConfigError(
        `--hostname '${template}': unknown %${key} (use %h, %n, %d, %i, %I or %%)`,
      );
    }
    return value;
  });
}
