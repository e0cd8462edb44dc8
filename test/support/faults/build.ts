import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '@conveyor/core/testing';

/** The repository root. */
export const ROOT = join(__dirname, '../../..');

// Inside the checkout, so a fresh clone never meets a lock an earlier run left behind.
const LOCK_PARENT = join(ROOT, 'node_modules', '.cache');
const LOCK = join(LOCK_PARENT, 'conveyor-build.lock');
const STALE_LOCK_MS = 180_000;

/** True when the lock's owner died or it is too old to trust. */
function staleLock(): boolean {
  try {
    if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) return true;
    const owner = Number(readFileSync(join(LOCK, 'pid'), 'utf8'));
    process.kill(owner, 0);
    return false;
  } catch (error) {
    // No pid file yet (being created) is not stale; a dead owner (ESRCH) is.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Builds packages/*\/dist, which worker child processes load through `require('@conveyor/…')`.
 * Two Jest workers may call this at once: a lock directory (with its owner's pid) keeps their
 * `tsc -b` runs from writing the same files together.
 */
export async function buildPackages(): Promise<void> {
  mkdirSync(LOCK_PARENT, { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (staleLock()) rmSync(LOCK, { recursive: true, force: true });
      else await sleep(100);
    }
  }
  try {
    execFileSync('npx', ['tsc', '-b', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
