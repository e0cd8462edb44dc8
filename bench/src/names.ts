import { randomUUID } from 'node:crypto';

/**
 * Everything one bench run creates on the services, all named after one uuid so that cleanup
 * (and a human) can find it: AMQP queues and exchanges, Redis keys, a PostgreSQL schema.
 */
export class RunNames {
  readonly id = randomUUID();
  /** Every AMQP queue the run declared (task queues, their `.dead` queues, raw queues). */
  readonly queues = new Set<string>();
  /** Every AMQP exchange the run declared. */
  readonly exchanges = new Set<string>();
  private counter = 0;

  /** Delay namespace of every Conveyor transport of the run (its 32 levels are removed too). */
  get delayNamespace(): string {
    return `bench-${this.id}.delay`;
  }

  /** Prefix of every Redis key the run writes. */
  get redisPrefix(): string {
    return `bench:${this.id}:`;
  }

  /** PostgreSQL schema of the run's result tables. */
  get pgSchema(): string {
    return `bench_${this.id.replace(/-/g, '')}`;
  }

  /** A new Conveyor task queue; with its `Q.dead` queue and `Q` exchange remembered. */
  taskQueue(label: string): string {
    const name = `bench-${this.id}.${label}-${++this.counter}`;
    this.queues.add(name);
    this.queues.add(`${name}.dead`);
    this.exchanges.add(name);
    return name;
  }

  /** A new plain queue for the raw amqplib runs (default exchange only). */
  rawQueue(label: string): string {
    const name = `bench-${this.id}.raw-${label}-${++this.counter}`;
    this.queues.add(name);
    return name;
  }
}
