import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * `npm run cycles` (part of `npm test`) must find import cycles, type-only imports included: an
 * `import type` cycle is still a cycle between layers. Run exactly as `package.json` says, on a
 * temporary copy of the sources, so a check that can no longer fail would show here.
 */
const root = join(__dirname, '..', '..');
const command = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts.cycles!;

function runCycleCheck(cwd: string): { status: number | null; output: string } {
  const result = spawnSync('sh', ['-c', command], {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      PATH: `${join(root, 'node_modules', '.bin')}${delimiter}${process.env.PATH}`,
    },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the import cycle check', () => {
  let copy: string;

  beforeEach(() => {
    copy = mkdtempSync(join(tmpdir(), 'conveyor-cycles-'));
    cpSync(join(root, 'packages', 'core', 'src'), join(copy, 'packages', 'core', 'src'), {
      recursive: true,
    });
  });
  afterEach(() => rmSync(copy, { recursive: true, force: true }));

  it('fails on a cycle made only of type imports', () => {
    // The cycle the worker split removed: the worker's host interface naming the whole app.
    appendFileSync(
      join(copy, 'packages', 'core', 'src', 'worker', 'worker-host.ts'),
      "\nimport type { Conveyor } from '../app/conveyor';\nexport type PlantedHost = Conveyor;\n",
    );
    const { status, output } = runCycleCheck(copy);
    // Exactly one: the planted one. The sources as they are have none (`npm test` checks that).
    expect(output).toContain('Found 1 circular dependency');
    expect(output).toContain('app/conveyor.ts');
    expect(output).toContain('worker/worker-host.ts');
    expect(status).not.toBe(0);
  });
});
