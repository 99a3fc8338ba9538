import { readdir, readFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { detectBackend } from '../src/ml/backend.js';

/** The machine the figures were measured on. */
export interface MachineInfo {
  readonly cpu: string;
  /** Logical processors the OS reports. */
  readonly cores: number;
  /** Processors this process may use. */
  readonly usableCores: number;
  readonly memoryGb: number;
  readonly os: string;
  readonly node: string;
  /** The TensorFlow.js backend seedflow picks here. */
  readonly backend: string;
}

/** Describes this machine. */
export function describeMachine(): MachineInfo {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    usableCores: availableParallelism(),
    memoryGb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
    backend: detectBackend(),
  };
}

/** The 1-minute load average, the number of runnable tasks the kernel counts (this bench's own included). */
export function loadNow(): number {
  return loadavg()[0] ?? 0;
}

/**
 * Samples the load average while measurements run, so the report can say how
 * busy the machine was: on a small machine another job skews every figure.
 */
export class LoadMonitor {
  private readonly samples: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  /** The load when monitoring started, before the bench did any work. */
  readonly before = loadNow();

  /** Starts sampling every `everyMs`. */
  start(everyMs = 5000): void {
    this.timer = setInterval(() => this.samples.push(loadNow()), everyMs);
    this.timer.unref();
  }

  /** Stops sampling and summarises. */
  stop(): { readonly before: number; readonly mean: number; readonly max: number; readonly after: number } {
    clearInterval(this.timer);
    const after = loadNow();
    const all = this.samples.length > 0 ? this.samples : [after];
    return { before: this.before, mean: all.reduce((a, b) => a + b, 0) / all.length, max: Math.max(...all), after };
  }
}

/** Other processes using a noticeable share of a core right now (Linux only; empty elsewhere). */
export async function busyProcesses(): Promise<string[]> {
  // Two snapshots of /proc/<pid>/stat, one second apart, give each process's CPU share.
  const snapshot = async (): Promise<Map<number, { ticks: number; name: string }>> => {
    const result = new Map<number, { ticks: number; name: string }>();
    let pids: string[];
    try {
      pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
    } catch {
      return result;
    }
    await Promise.all(pids.map(async (pid) => {
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        const name = stat.slice(stat.indexOf('(') + 1, close);
        const fields = stat.slice(close + 2).split(' ');
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        result.set(Number(pid), { ticks: Number(fields[11]) + Number(fields[12]), name });
      } catch {
        // The process ended between the listing and the read.
      }
    }));
    return result;
  };
  const first = await snapshot();
  await new Promise((r) => setTimeout(r, 1000));
  const second = await snapshot();
  const busy: string[] = [];
  for (const [pid, { ticks, name }] of second) {
    if (pid === process.pid) continue;
    const before = first.get(pid);
    if (before === undefined) continue;
    // Kernel ticks are 1/100 s on Linux: ticks per second is a percentage of one core.
    const share = ticks - before.ticks;
    if (share >= 20) busy.push(`${name} (pid ${pid}, ${share}% of a core)`);
  }
  return busy;
}
