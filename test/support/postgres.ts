import { randomUUID } from 'node:crypto';
import type { ResultMeta, TaskState } from '@conveyor/core';
import { metaOf, successMeta } from '@conveyor/core/testing';
import { Client } from 'pg';
import {
  PostgresResultBackend,
  type PostgresResultBackendOptions,
} from '../../packages/result-postgres/src';
import { DATABASE_URL } from './services';

/** A fresh schema name for one test file. */
export function uniqueSchema(): string {
  return `conveyor_test_${randomUUID().replace(/-/g, '')}`;
}

/** Runs SQL on a short-lived connection of its own (outside every backend's pool). */
export async function sql<R extends Record<string, unknown> = Record<string, unknown>>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new Client({
    connectionString: DATABASE_URL,
    application_name: 'conveyor-test-admin',
  });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A schema of its own for this test file (see {@link uniqueSchema}), dropped after the file. */
export function useSchema(): string {
  const schema = uniqueSchema();
  afterAll(() => dropSchema(schema));
  return schema;
}

export async function dropSchema(schema: string): Promise<void> {
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** A backend on the test database, small pool, quiet about background errors. */
export function makeBackend(
  schema: string,
  options: Partial<PostgresResultBackendOptions> = {},
): PostgresResultBackend {
  return new PostgresResultBackend({
    url: DATABASE_URL,
    schema,
    maxConnections: 4,
    onError: () => undefined,
    ...options,
  });
}

export function state(taskId: string, status: TaskState): ResultMeta {
  return metaOf(taskId, status);
}

export { successMeta as success };
