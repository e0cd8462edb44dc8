import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The version of `@conveyor/core`, read from its package.json (two levels up from `src/cli` or `dist/cli`). */
export function coreVersion(): string {
  const manifest = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}
