// An ES module app for `conveyor worker --app`: it imports a sibling module by its compiled name,
// as ES modules must, and plays its own web node on the in-memory broker.
import 'reflect-metadata';
import { Conveyor, Task } from '@conveyor/core';
import { greeting } from './greeting.js';

@Task({ name: 'esm.greet' })
export class Greet {
  run(name: string): string {
    return greeting(name);
  }
}

export const app = new Conveyor({ tasks: [Greet] });

setTimeout(() => {
  void (async () => {
    const result = await app.client(Greet).delay('ESM');
    console.log(await result.get({ timeoutMs: 5_000 }));
    process.kill(process.pid, 'SIGTERM');
  })();
}, 100);
