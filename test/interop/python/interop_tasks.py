"""A small Python Celery app for Conveyor's interoperability tests.

Run by the Jest tests as a real Celery worker (`python3 -m celery -A interop_tasks worker`)
against the same RabbitMQ and Redis as the Conveyor side. Configuration comes from the
environment: AMQP_URL, REDIS_URL, INTEROP_QUEUE.
"""
import os
import time

from celery import Celery

app = Celery(
    'interop',
    broker=os.environ.get('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672//'),
    backend=os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0'),
)
app.conf.update(
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    task_default_queue=os.environ.get('INTEROP_QUEUE', 'celery'),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
)


@app.task(name='tasks.add')
def add(x, y):
    return x + y


@app.task(name='tasks.fail')
def fail(msg):
    raise ValueError(msg)


@app.task(name='tasks.flaky', bind=True, max_retries=3)
def flaky(self, failures):
    if self.request.retries < failures:
        raise self.retry(countdown=0.3, exc=RuntimeError('not yet'))
    return {'retries': self.request.retries}


@app.task(name='tasks.describe')
def describe(name, count=1, tags=None):
    return {'name': name, 'count': count, 'tags': tags or [], 'ok': True}


@app.task(name='tasks.clock')
def clock():
    """The time the task ran, so callers can check countdowns and etas."""
    return time.time()


@app.task(name='tasks.describe_value')
def describe_value(value):
    """How a value sent by Conveyor arrived: its repr and Python type."""
    return {'repr': repr(value), 'type': type(value).__name__}


@app.task(name='tasks.values')
def values():
    """Values JavaScript's one number type cannot tell apart, or holds only as BigInt."""
    return {'big': 2**64 + 1, 'negative_big': -(2**63 + 1), 'two': 2.0, 'negative_zero': -0.0}
