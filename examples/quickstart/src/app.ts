import 'reflect-metadata';
import {
  Conveyor,
  MemoryResultBackend,
  MemoryTransport,
  type ResultBackend,
  type Transport,
} from '@conveyor/core';
import { AmqpTransport } from '@conveyor/amqp-transport';
import { PostgresResultBackend } from '@conveyor/result-postgres';
import { RedisResultBackend } from '@conveyor/result-redis';
import { Add, AttendeeService, InMemoryAttendees } from './tasks';

/** RabbitMQ when AMQP_URL is set, else the in-memory broker. */
function broker(): Transport {
  return process.env.AMQP_URL
    ? new AmqpTransport({ url: process.env.AMQP_URL })
    : new MemoryTransport();
}

/** Redis when REDIS_URL is set, else PostgreSQL when DATABASE_URL is set, else in memory. */
function backend(): ResultBackend {
  if (process.env.REDIS_URL) return new RedisResultBackend({ url: process.env.REDIS_URL });
  if (process.env.DATABASE_URL) return new PostgresResultBackend({ url: process.env.DATABASE_URL });
  return new MemoryResultBackend();
}

/** The app, shared by web and worker nodes: `conveyor worker --app examples/quickstart/dist/app.js`. */
export const app = new Conveyor({
  broker: broker(),
  backend: backend(),
  tasks: [Add, AttendeeService],
});

/** What `conveyor worker` builds the attendees service with (a function: web nodes build nothing). */
export const instances = (): object[] => [new AttendeeService(new InMemoryAttendees())];

/** Where the quickstart runs, for its output. */
export function describeServices(): string {
  const where = [process.env.AMQP_URL ? 'RabbitMQ' : 'in-memory broker'];
  where.push(
    process.env.REDIS_URL ? 'Redis' : process.env.DATABASE_URL ? 'PostgreSQL' : 'in-memory results',
  );
  return where.join(' + ');
}
