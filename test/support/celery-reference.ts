import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ResultMeta } from '@conveyor/core';

/** What Python Celery 5.2.6 put on the wire and stored in Redis, captured from a real Celery. */
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

const CAPTURE = join(__dirname, '../fixtures/celery-5.2.6-wire.json');

/**
 * Reads the Celery reference captured from Debian's Celery 5.2.6 and committed with the tests.
 * `test/interop/python/capture_reference.py` captures it again (see its docstring).
 */
export function celeryWireReference(): CeleryWireReference {
  return JSON.parse(readFileSync(CAPTURE, 'utf8')) as CeleryWireReference;
}
