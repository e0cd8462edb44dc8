"""Celery's own EventReceiver, for Conveyor's event tests.

Prints READY once it consumes, then every event it receives as one JSON object per line, as
Celery hands it to handlers (timestamp adjusted to this process's UTC offset, local_received
set). Broker from AMQP_URL (see interop_tasks). Runs until killed.
"""
import json
import sys

from interop_tasks import app


class Receiver(app.events.Receiver):
    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        print('READY', flush=True)


def on_event(event):
    print(json.dumps(event, default=str), flush=True)


with app.connection() as connection:
    Receiver(connection, handlers={'*': on_event}).capture(limit=None, timeout=None, wakeup=True)
sys.exit(0)
