import { isReadyState, type ResultMeta, type TaskState } from '@conveyor/core/plugin';

/** A result meta in `status`, with a fixed `date_done` for ready states, for backend tests. */
export function metaOf(taskId: string, status: TaskState, result: unknown = null): ResultMeta {
  return {
    status,
    result,
    traceback: null,
    children: [],
    date_done: isReadyState(status) ? '2026-11-24T04:15:21.037806' : null,
    task_id: taskId,
  };
}

/** A SUCCESS meta. */
export function successMeta(taskId: string, result: unknown): ResultMeta {
  return metaOf(taskId, 'SUCCESS', result);
}
