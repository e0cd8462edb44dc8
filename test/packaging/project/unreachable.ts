// An app whose broker is not there, for the worker's "unreachable at startup" exit code.
import 'reflect-metadata';
import { Conveyor, Task } from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';

@Task({ name: 'noop.run' })
class Noop {
  run(): void {}
}

export const app = new Conveyor({
  broker: new AmqpTransport({ url: process.env.AMQP_URL, connectTimeoutMs: 1_000 }),
  backend: null,
  tasks: [Noop],
});
