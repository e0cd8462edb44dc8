/**
 * Summarises V8 `.cpuprofile` files (from `node --cpu-prof`, or `run.js --profile DIR` for the
 * forked children): self time per function, top N, with the package each function lives in.
 *
 *   node bench/dist/profile-summary.js FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Where a script lives, shortened: `amqplib/lib/channel.js`, `core/dist/worker/worker.js`. */
function place(url: string): string {
  if (!url) return '(native)';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length);
  const pkg = path.match(/(packages|bench)\/(.*)$/);
  if (pkg) return pkg[0];
  return path.startsWith('node:') ? path : path.split('/').slice(-2).join('/');
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '30' } },
  });
  const top = Number(values.top);
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    profile.samples.forEach((id, i) =>
      self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
    );
    const total = profile.endTime - profile.startTime;
    const byFunction = new Map<string, number>();
    const byPlace = new Map<string, number>();
    for (const [id, us] of self) {
      const frame = byId.get(id)!.callFrame;
      const key = `${frame.functionName || '(anonymous)'}  ${place(frame.url)}:${frame.lineNumber + 1}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + us);
      const where = frame.url
        ? place(frame.url).split('/').slice(0, 2).join('/')
        : frame.functionName;
      byPlace.set(where, (byPlace.get(where) ?? 0) + us);
    }
    const fmt = (us: number): string =>
      `${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%`;
    console.log(`\n== ${file}: ${(total / 1e6).toFixed(1)} s profiled`);
    console.log('-- self time by function');
    for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${fmt(us)}  ${key}`);
    console.log('-- self time by package / area');
    for (const [key, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 15))
      console.log(`${fmt(us)}  ${key}`);
  }
}

main();
