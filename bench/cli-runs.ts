import { fileURLToPath } from 'node:url';
import type { RunEvent } from '../src/executor/events.js';
import { checkFinished, runProcess, tail } from './processes.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** One `seedflow run` as the bench saw it. */
export interface PipelineRun {
  /** From spawning the CLI to its exit, in seconds: what a user waits. */
  readonly wallS: number;
  /** Stage instances that really ran (not cached). */
  readonly ran: number;
  /** The largest `peakRssMb` of the stage-end events of worker stages; null when no worker stage ran. */
  readonly peakWorkerRssMb: number | null;
  /** The stage whose worker reported that peak. */
  readonly peakStage: string | null;
  /** Stage time per stage type (summed over instances), in seconds, for the profile of a slow run. */
  readonly stageSeconds: Readonly<Record<string, number>>;
  /** `busy[c]`: seconds of the run during which exactly c stages were running. */
  readonly busy: readonly number[];
  /** From spawning the CLI to its run-start event (loading, planning, hashing inputs), in seconds. */
  readonly startupS: number;
}

/** Seconds with exactly 0, 1, 2... stages running, between the first event and the last. */
function occupancy(spans: readonly (readonly [number, number])[], from: number, to: number): number[] {
  const edges = spans.flatMap(([a, b]) => [[a, 1], [b, -1]] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const busy: number[] = [];
  let running = 0;
  let at = from;
  for (const [time, change] of [...edges, [to, 0] as const]) {
    busy[running] = (busy[running] ?? 0) + Math.max(0, time - at) / 1000;
    at = Math.max(at, time);
    running += change;
  }
  return Array.from(busy, (b) => b ?? 0);
}

/** Runs `seedflow run FILE --store STORE --jobs N --json` and reads its events. */
export async function runPipeline(file: string, store: string, jobs: number, sets: readonly string[], extra: readonly string[] = []): Promise<PipelineRun> {
  const args = [CLI, 'run', file, '--store', store, '--jobs', String(jobs), '--json', ...sets.flatMap((s) => ['--set', s]), ...extra];
  const finished = await runProcess(process.execPath, args);
  checkFinished(`seedflow run ${file} --jobs ${jobs}`, finished);
  let ran = 0;
  let peak: number | null = null;
  let peakStage: string | null = null;
  let status: string | null = null;
  const stageSeconds: Record<string, number> = {};
  const starts = new Map<string, number>();
  const spans: [number, number][] = [];
  let first: number | null = null;
  let last = 0;
  for (const line of finished.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const event = JSON.parse(line) as RunEvent;
    first ??= event.time;
    last = event.time;
    if (event.event === 'run-end') status = event.status;
    if (event.event === 'stage-start') starts.set(event.id, event.time);
    if (event.event !== 'stage-end') continue;
    spans.push([starts.get(event.id) ?? event.time - event.durationMs, event.time]);
    if (event.status === 'done') ran++;
    stageSeconds[event.stage] = (stageSeconds[event.stage] ?? 0) + event.durationMs / 1000;
    if (event.peakRssMb !== undefined && (peak === null || event.peakRssMb > peak)) {
      peak = event.peakRssMb;
      peakStage = event.id;
    }
  }
  if (status !== 'success') throw new Error(`seedflow run ${file} ended with status ${status ?? 'unknown'}:\n${tail(finished.stderr)}`);
  const startupS = first === null ? 0 : (first - finished.startedAt) / 1000;
  return { wallS: finished.wallS, ran, peakWorkerRssMb: peak, peakStage, stageSeconds, busy: occupancy(spans, first ?? 0, last), startupS };
}

/** Wall time of `seedflow validate FILE`, in seconds. */
export async function timeValidate(file: string, sets: readonly string[]): Promise<number> {
  const finished = await runProcess(process.execPath, [CLI, 'validate', file, ...sets.flatMap((s) => ['--set', s])]);
  checkFinished(`seedflow validate ${file}`, finished);
  return finished.wallS;
}
