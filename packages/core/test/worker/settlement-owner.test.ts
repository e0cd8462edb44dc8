import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Only settlement settles: every ack, requeue and dead-letter of a delivery goes through
 * `worker/settlement.ts`, so "exactly once" is decided in one place. The rest of the worker holds
 * a `Settlement` (or a `Receipt`, which has no settling methods) instead of the `Delivery`.
 */
describe('settlement ownership', () => {
  const dir = join(__dirname, '..', '..', 'src', 'worker');
  const settling = /\.(ack|requeue|deadLetter)\s*\(/;

  it('has no code under worker/ but settlement.ts call a settling method of a Delivery', () => {
    const offenders: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      if (file === 'settlement.ts') continue;
      const lines = readFileSync(join(dir, file), 'utf8').split('\n');
      lines.forEach((line, i) => {
        // A Settlement's own methods have the same names; those calls go through `settlement`.
        if (settling.test(line) && !/settlement\.(ack|requeue|deadLetter)\(/.test(line)) {
          offenders.push(`${file}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    expect(offenders).toEqual([]);
  });

  it('sees the settling calls in settlement.ts, so the pattern still matches them', () => {
    const source = readFileSync(join(dir, 'settlement.ts'), 'utf8');
    expect(source).toMatch(/this\.delivery\.ack\(\)/);
    expect(source).toMatch(/this\.delivery\.requeue\(\)/);
    expect(source).toMatch(/this\.delivery\.deadLetter\(/);
  });
});
