import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultMeta } from '@conveyor/core';

/** What Python Celery 5.2.6 put on the wire, captured once (`shared/reference` beside the repo). */
export interface CeleryWireReference {
  message: {
    exchange: string;
    routingKey: string;
    properties: Record<string, unknown>;
    headers: Record<string, unknown>;
    body: string;
  };
  success_meta: ResultMeta;
  failure_meta: ResultMeta;
  unknown_task_meta_result: Record<string, unknown>;
}

const REPO_ROOT = join(__dirname, '../..');

/**
 * Reads the captured Celery reference. It lives in the project's shared folder, beside the
 * repository (`../shared/reference`); `CONVEYOR_SHARED_DIR` points elsewhere.
 */
export function celeryWireReference(): CeleryWireReference {
  const shared = process.env.CONVEYOR_SHARED_DIR ?? join(REPO_ROOT, '../shared');
  const path = join(shared, 'reference/celery-5.2.6-wire.json');
  if (!existsSync(path)) {
    throw new Error(`the Celery reference capture is missing at ${path} (set CONVEYOR_SHARED_DIR)`);
  }
  return JSON.parse(readFileSync(path, 'utf8')) as CeleryWireReference;
}
