import { PassThrough } from 'node:stream';
import { ConfigError } from '@conveyor/core';
import { confirmPurge } from '../../src/cli/commands/dlq';

/** A terminal that answers `answer` and records the question. */
function terminal(answer: string) {
  const input = new PassThrough();
  const output = new PassThrough();
  let asked = '';
  output.on('data', (chunk: Buffer) => (asked += chunk.toString()));
  setImmediate(() => input.end(`${answer}\n`));
  return { io: { input, output, interactive: true }, asked: () => asked };
}

describe('conveyor dlq purge: asking first', () => {
  it('deletes on y or yes, naming what it will delete', async () => {
    const yes = terminal('y');
    await expect(confirmPurge('emails', { ids: ['a', 'b'] }, yes.io)).resolves.toBe(true);
    expect(yes.asked()).toBe('Delete the dead letters of a, b for good? [y/N] ');
    const all = terminal('YES');
    await expect(confirmPurge('emails', { all: true }, all.io)).resolves.toBe(true);
    expect(all.asked()).toContain("every dead letter of 'emails.dead'");
  });

  it('deletes nothing on any other answer, or none', async () => {
    await expect(confirmPurge('emails', { all: true }, terminal('n').io)).resolves.toBe(false);
    await expect(confirmPurge('emails', { all: true }, terminal('').io)).resolves.toBe(false);
  });

  it('refuses without a terminal, saying to pass -f', async () => {
    const io = { input: new PassThrough(), output: new PassThrough(), interactive: false };
    const refused = confirmPurge('emails', { all: true }, io);
    await expect(refused).rejects.toBeInstanceOf(ConfigError);
    await expect(refused).rejects.toThrow(/-f/);
  });
});
