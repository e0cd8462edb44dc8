"""The Python side of the example: a Celery app with one task, and a helper that calls a
Conveyor task. Both sides share RabbitMQ (AMQP_URL) and Redis (REDIS_URL)."""
import os
import sys

from celery import Celery

app = Celery(
    'example',
    broker=os.environ.get('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672//'),
    backend=os.environ.get('REDIS_URL', 'redis://127.0.0.1:6379/0'),
)
app.conf.task_default_queue = 'celery-example-py'


@app.task(name='tasks.add')
def add(x, y):
    return x + y


if __name__ == '__main__':
    # python3 tasks.py call: a Python producer calling the Conveyor task `math.multiply`.
    result = app.send_task('math.multiply', args=(6, 7), kwargs={}, queue='celery-example-js')
    print(f'python: math.multiply(6, 7) = {result.get(timeout=10)}')
    sys.stdout.flush()
