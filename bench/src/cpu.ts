import { readdirSync, readFileSync } from 'node:fs';

/** Linux's USER_HZ, the unit of /proc/<pid>/stat times: 100 on every mainstream platform. */
const clockTicks = 100;

/**
 * CPU time of the local service processes (RabbitMQ's beam.smp, redis-server, postgres), read
 * from /proc on Linux; empty elsewhere or when they run on another host. Milliseconds by name.
 */
export function serviceCpuMs(): Record<string, number> {
  const totals: Record<string, number> = {};
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return totals;
  }
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const service =
        name === 'beam.smp'
          ? 'rabbitmq'
          : name === 'redis-server'
            ? 'redis'
            : name === 'postgres'
              ? 'postgres'
              : undefined;
      if (!service) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
      const ticks = Number(fields[11]) + Number(fields[12]);
      totals[service] = (totals[service] ?? 0) + (ticks * 1000) / clockTicks;
    } catch {
      // The process ended meanwhile.
    }
  }
  return totals;
}

/** Per-service CPU milliseconds spent between two {@link serviceCpuMs} readings. */
export function cpuBetween(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, ms] of Object.entries(after)) out[name] = Math.round(ms - (before[name] ?? 0));
  return out;
}

/** Where the CPU went during a measurement, in % of one core over its wall time. */
export type CpuShare = Record<string, number>;

/** Measures the CPU of this process, the services and the given children around `work`. */
export async function measureCpu<T>(
  children: Array<{ label: string; cpuMs: () => Promise<number> }>,
  work: () => Promise<T>,
): Promise<{ value: T; cpu: CpuShare }> {
  const services = serviceCpuMs();
  const own = process.cpuUsage();
  const childStart = await Promise.all(children.map((c) => c.cpuMs()));
  const started = performance.now();
  const value = await work();
  const wall = performance.now() - started;
  const childEnd = await Promise.all(children.map((c) => c.cpuMs()));
  const ownUsed = process.cpuUsage(own);
  const share = (ms: number): number => Math.round((100 * ms) / wall);
  const cpu: CpuShare = { producer: share((ownUsed.user + ownUsed.system) / 1000) };
  children.forEach((c, i) => (cpu[c.label] = share(childEnd[i]! - childStart[i]!)));
  for (const [name, ms] of Object.entries(cpuBetween(services, serviceCpuMs())))
    cpu[name] = share(ms);
  return { value, cpu };
}
