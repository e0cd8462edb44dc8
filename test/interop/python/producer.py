"""Python Celery as a producer, for Conveyor's interoperability tests.

Reads one JSON command from argv[1]:
  {"task": "math.add", "args": [4, 5], "kwargs": {}, "queue": "q", "countdown": null,
   "eta_in": null, "timeout": 10, "wait": true}
Sends it with `app.send_task`, waits for the result when asked, and prints one JSON line:
  {"ok": true, "id": ..., "result": ..., "state": ...} or
  {"ok": false, "id": ..., "exc_type": ..., "exc_module": ..., "exc_message": ..., "state": ...}
With {"read": id, "queue": q} it sends nothing and waits for the result of task `id`.
"""
import datetime
import json
import sys

from interop_tasks import app


def main():
    command = json.loads(sys.argv[1])
    options = {'queue': command['queue']}
    if command.get('countdown') is not None:
        options['countdown'] = command['countdown']
    if command.get('eta_in') is not None:
        options['eta'] = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=command['eta_in'])
    if command.get('read'):
        result = app.AsyncResult(command['read'])
    else:
        # A tuple, as Python callers write it: it is what argsrepr shows.
        result = app.send_task(command['task'], args=tuple(command.get('args', [])),
                               kwargs=command.get('kwargs', {}), **options)
    out = {'id': result.id}
    if not command.get('wait', True):
        out['ok'] = True
    else:
        try:
            out['result'] = result.get(timeout=command.get('timeout', 10))
            out['ok'] = True
        except Exception as exc:  # the point is to report any remote error type
            out.update(ok=False, exc_type=type(exc).__name__,
                       exc_module=type(exc).__module__, exc_message=str(exc),
                       exc_args=[str(a) for a in exc.args])
        out['state'] = result.state
    print(json.dumps(out))


if __name__ == '__main__':
    main()
