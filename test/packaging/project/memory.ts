// The in-memory default: no broker, no result store; worker and producer in one process, which
// must exit by itself once the app is closed.
import 'reflect-metadata';
import { Conveyor, Task } from '@conveyor/core';

@Task({ name: 'math.add' })
class Add {
  run(a: number, b: number): number {
    return a + b;
  }
}

class Point {
  x!: number;
  y!: number;
}

@Task({ name: 'geo.isPoint' })
class IsPoint {
  // On run() too, so TypeScript records the parameter types the worker rebuilds arguments from.
  @Task()
  run(point: Point, when: Date): boolean {
    return point instanceof Point && when instanceof Date;
  }
}

async function main(): Promise<void> {
  const app = new Conveyor({ tasks: [Add, IsPoint] });
  const worker = app.worker({ handleSignals: false });
  await worker.start();
  const sum = await app.client(Add).delay(4, 5);
  console.log(`add(4, 5) = ${await sum.get({ timeoutMs: 5_000 })}`);
  const point = Object.assign(new Point(), { x: 1, y: 2 });
  const check = await app.client(IsPoint).delay(point, new Date());
  console.log(`arguments rebuilt as Point and Date: ${await check.get({ timeoutMs: 5_000 })}`);
  await worker.stop();
  await app.close();
}

void main();
