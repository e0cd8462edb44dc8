import 'reflect-metadata';
import { Task } from '@conveyor/core';

/**
 * The trivial task of every scenario: returns its argument. It names no queue, so it goes to
 * the app's `defaultQueue`, which each scenario sets to a uuid-named queue.
 */
@Task({ name: 'bench.echo' })
export class Echo {
  run(n: number): number {
    return n;
  }
}
