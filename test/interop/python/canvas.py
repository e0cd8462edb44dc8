"""Python Celery builds a workflow that crosses Conveyor and Celery workers, for the interop tests.

Reads one JSON command from argv[1]:
  {"kind": "chain" | "link" | "link_error", "ts_queue": ..., "py_queue": ..., "timeout": 20}
and prints one JSON line with the ids involved and what Python's AsyncResult.get() returned.
Or, for stored groups: {"kind": "group_restore", "group_id": ...} prints the member ids Python's
GroupResult.restore() reads; {"kind": "group_save", "group_id": ..., "members": [...]} saves one.
Or {"kind": "mark_failure", "task_id": ..., "exc": "TimeLimitExceeded" | "WorkerLostError"} stores
that failure as a Celery worker does.
"""
import json
import sys

from celery import chain

from interop_tasks import app


def main():
    command = json.loads(sys.argv[1])
    kind = command['kind']
    if kind == 'group_restore':
        group = app.GroupResult.restore(command['group_id'])
        print(json.dumps({'id': group.id, 'members': [r.id for r in group.results]}))
        return
    if kind == 'group_save':
        members = [app.AsyncResult(i) for i in command['members']]
        app.GroupResult(command['group_id'], members).save()
        print(json.dumps({'id': command['group_id']}))
        return
    if kind == 'mark_failure':
        from billiard.exceptions import TimeLimitExceeded, WorkerLostError
        exc = {'TimeLimitExceeded': TimeLimitExceeded(2.5),
               'WorkerLostError': WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL).')
               }[command['exc']]
        app.backend.mark_as_failure(command['task_id'], exc)
        print(json.dumps({'id': command['task_id']}))
        return
    ts, py, timeout = command['ts_queue'], command['py_queue'], command.get('timeout', 20)
    if kind == 'chain':
        # Conveyor, then Celery, then Conveyor again: each step gets the previous result.
        result = chain(
            app.signature('math.add', args=(1, 2), queue=ts),
            app.signature('tasks.add', args=(10,), queue=py),
            app.signature('math.add', args=(100,), queue=ts),
        ).apply_async()
        out = {'ids': [result.parent.parent.id, result.parent.id, result.id],
               'result': result.get(timeout=timeout)}
    elif kind == 'chain_fail':
        # Conveyor's first step fails: Python's get() of a fresh handle on the last step must
        # raise the same error, not wait for ever.
        result = chain(
            app.signature('shop.reserve', args=('sku-7',), queue=ts),
            app.signature('tasks.add', args=(1,), queue=py),
            app.signature('math.add', args=(2,), queue=ts),
        ).apply_async()
        ids = [result.parent.parent.id, result.parent.id, result.id]
        out = {'ids': ids}
        try:
            app.AsyncResult(result.id).get(timeout=timeout)
            out['raised'] = None
        except Exception as exc:  # the point is to report the remote error type
            out['raised'] = {'type': type(exc).__name__, 'message': str(exc)}
        out['states'] = [app.AsyncResult(i).state for i in ids]
    elif kind == 'link':
        callback = app.signature('tasks.add', args=(1,), queue=py)
        callback_id = callback.freeze().id
        result = app.signature('math.add', args=(2, 3), queue=ts).apply_async(link=callback)
        out = {'id': result.id, 'link_id': callback_id, 'result': result.get(timeout=timeout),
               'callback': app.AsyncResult(callback_id).get(timeout=timeout)}
    elif kind == 'link_error':
        # An errback Python cannot call in process gets the failed task's id as its argument.
        errback = app.signature('shop.describe', queue=ts)
        errback_id = errback.freeze().id
        result = app.signature('shop.reserve', args=('sku-1',), queue=ts).apply_async(
            link_error=errback)
        out = {'id': result.id, 'link_id': errback_id,
               'errback': app.AsyncResult(errback_id).get(timeout=timeout),
               'state': app.AsyncResult(result.id).state}
    else:
        raise SystemExit(f'unknown kind {kind}')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
