"""Captures what Python Celery puts on the wire, for Conveyor's golden tests.

    AMQP_URL=... REDIS_URL=... /usr/bin/python3 capture_reference.py OUT.json

Writes one JSON document (the shape `test/support/celery-reference.ts` reads):
- message: the raw AMQP message of `send_task('tasks.add', args=(2, 3))`, read back from the
  broker with basic_get; properties use the names Conveyor's transport gives them.
- success_meta, failure_meta: the result documents a real Celery worker stored in Redis for
  `tasks.add(2, 3)` and `tasks.fail('boom')`.
- unknown_task_meta_result: the `result` of the FAILURE a Celery worker stores for a task it
  does not know.

Everything it creates (a queue and an exchange named capture-<uuid>, the result keys) is
removed at the end.
"""
import json
import os
import subprocess
import sys
import time
import uuid

import celery
import redis
from kombu import Connection

from interop_tasks import app

# py-amqp's property names, and the names Conveyor's TransportMessage uses for them.
PROPERTY_NAMES = {
    'content_type': 'contentType',
    'content_encoding': 'contentEncoding',
    'correlation_id': 'correlationId',
    'reply_to': 'replyTo',
    'priority': 'priority',
    'delivery_mode': 'deliveryMode',
    'expiration': 'expiration',
    'message_id': 'messageId',
    'timestamp': 'timestamp',
    'type': 'type',
    'user_id': 'userId',
    'app_id': 'appId',
}


def read_message(connection, queue):
    channel = connection.default_channel
    for _ in range(100):
        message = channel.basic_get(queue, no_ack=True)
        if message is not None:
            break
        time.sleep(0.05)
    else:
        raise RuntimeError('the published task never reached ' + queue)
    properties = {PROPERTY_NAMES[k]: v for k, v in message.properties.items()
                  if k in PROPERTY_NAMES}
    return {
        'exchange': message.delivery_info['exchange'],
        'routingKey': message.delivery_info['routing_key'],
        'properties': properties,
        'headers': dict(message.properties.get('application_headers') or {}),
        'body': message.body.decode('utf-8') if isinstance(message.body, bytes) else message.body,
    }


def wait_for_meta(store, task_id, timeout=30):
    key = 'celery-task-meta-' + task_id
    deadline = time.time() + timeout
    while time.time() < deadline:
        raw = store.get(key)
        if raw is not None:
            meta = json.loads(raw)
            if meta['status'] in ('SUCCESS', 'FAILURE'):
                store.delete(key)
                return meta
        time.sleep(0.05)
    raise RuntimeError('no final result for ' + task_id)


def main():
    out_path = sys.argv[1]
    queue = 'capture-' + str(uuid.uuid4())
    store = redis.Redis.from_url(os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0'))
    env = dict(os.environ, INTEROP_QUEUE=queue, PYTHONDONTWRITEBYTECODE='1')
    worker = None
    with Connection(app.conf.broker_url) as connection:
        try:
            app.send_task('tasks.add', args=(2, 3), queue=queue)
            message = read_message(connection, queue)

            worker = subprocess.Popen(
                [sys.executable, '-m', 'celery', '-A', 'interop_tasks', 'worker', '-P', 'solo',
                 '-Q', queue, '-l', 'warning', '-n', queue + '@%h',
                 '--without-gossip', '--without-mingle', '--without-heartbeat'],
                cwd=os.path.dirname(os.path.abspath(__file__)), env=env)
            added = app.send_task('tasks.add', args=(2, 3), queue=queue)
            failed = app.send_task('tasks.fail', args=('boom',), queue=queue)
            unknown = app.send_task('tasks.not_registered', args=(1,), queue=queue)
            document = {
                'celery_version': celery.__version__,
                'message': message,
                'success_meta': wait_for_meta(store, added.id),
                'failure_meta': wait_for_meta(store, failed.id),
                'unknown_task_meta_result': wait_for_meta(store, unknown.id)['result'],
            }
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            channel = connection.default_channel
            channel.queue_delete(queue)
            channel.exchange_delete(queue)
    with open(out_path, 'w') as out:
        json.dump(document, out, indent=2, sort_keys=True)
        out.write('\n')


if __name__ == '__main__':
    main()
