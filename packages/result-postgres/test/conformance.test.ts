import { randomUUID } from 'node:crypto';
import { SerializationError, type ResultMeta } from '@conveyor/core';
import { describeBackendConformance } from '@conveyor/core/testing';
import {
  dropSchema,
  makeBackend,
  sql,
  state,
  success,
  uniqueSchema,
} from '../../../test/support/postgres';

const schema = uniqueSchema();

describeBackendConformance('postgres', () => ({
  create: () => makeBackend(schema),
  cleanup: () => dropSchema(schema),
}));

describe('PostgresResultBackend storage', () => {
  const own = uniqueSchema();
  const backend = makeBackend(own);
  afterAll(async () => {
    await backend.close();
    await dropSchema(own);
  });

  it('keeps SUCCESS when a redelivered task runs again: RECEIVED, STARTED, then a second result', async () => {
    const id = randomUUID();
    await backend.store(state(id, 'STARTED'));
    const first = success(id, 'first run');
    await backend.store(first);
    // The broker redelivers (the worker died before acking): the second run reports again.
    await backend.store(state(id, 'RECEIVED'));
    await backend.store({ ...state(id, 'STARTED'), worker: 'worker-2@host' });
    await backend.store({ ...success(id, 'second run'), worker: 'worker-2@host' });
    await expect(backend.get(id)).resolves.toEqual(first);
    const rows = await sql<{ status: string }>(
      `SELECT status FROM "${own}".conveyor_task_results WHERE task_id = $1`,
      [id],
    );
    expect(rows).toEqual([{ status: 'SUCCESS' }]);
  });

  it('keeps SUCCESS when redelivered writes race with it from several instances', async () => {
    const other = makeBackend(own);
    try {
      const id = randomUUID();
      const result = success(id, 'the one');
      await Promise.all([
        backend.store(result),
        ...Array.from({ length: 20 }, () => other.store(state(id, 'STARTED'))),
      ]);
      await other.store(state(id, 'STARTED'));
      await expect(backend.get(id)).resolves.toEqual(result);
    } finally {
      await other.close();
    }
  });

  it('stores the meta document as JSONB, with the status beside it', async () => {
    const meta: ResultMeta = { ...success(randomUUID(), { a: [1, 2.5, 'x'] }), name: 'math.add' };
    await backend.store(meta);
    const rows = await sql<{ status: string; kind: string; meta: unknown }>(
      `SELECT status, jsonb_typeof(meta) AS kind, meta FROM "${own}".conveyor_task_results WHERE task_id = $1`,
      [meta.task_id],
    );
    expect(rows).toEqual([{ status: 'SUCCESS', kind: 'object', meta }]);
  });

  it('refuses a result that jsonb cannot hold (U+0000) with a SerializationError', async () => {
    const id = randomUUID();
    await expect(backend.store(success(id, 'nul \u0000 inside'))).rejects.toBeInstanceOf(
      SerializationError,
    );
    await expect(backend.get(id)).resolves.toBeUndefined();
  });

  it('reads a group stored by another instance and overwrites it on a second store', async () => {
    const other = makeBackend(own);
    try {
      const groupId = randomUUID();
      await backend.storeGroup({ group_id: groupId, result: [[['a', null], null]] });
      await other.storeGroup({ group_id: groupId, result: [[['b', null], null]] });
      await expect(backend.getGroup(groupId)).resolves.toEqual({
        group_id: groupId,
        result: [[['b', null], null]],
      });
    } finally {
      await other.close();
    }
  });
});
