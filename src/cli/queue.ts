/**
 * The queue's commands: `seedflow worker`, and the queue rows of `doctor`.
 * Loaded only for them, so local runs never load BullMQ.
 */
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { QueueError } from '../executor/queue-error.js';

/** A command-line value the queue commands cannot use; the message names the flag. */
export class QueueUsageError extends Error {}

/** Reads a duration: `500ms`, `30s`, `5m`, `1h`, `7d`, or a number of seconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (match === null) throw new QueueUsageError(`${flag} must be a duration such as 30s, 5m, 7d or 500ms, got "${text}"`);
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(match[1]) * scale);
}

/** The queue URL of `--queue`, else of SEEDFLOW_QUEUE. */
export function queueUrlOf(flag: string | undefined): string | undefined {
  const env = process.env['SEEDFLOW_QUEUE'];
  return flag ?? (env !== undefined && env !== '' ? env : undefined);
}

/** What `seedflow worker` reads from the command line. */
export interface WorkerArgs {
  readonly queue?: string;
  readonly store?: string;
  readonly jobs?: string;
  readonly name?: string;
  readonly idleExit?: string;
}

/** `seedflow worker`: runs until SIGTERM or idle; resolves with the exit code. */
export async function cmdWorker(args: WorkerArgs, say: (line: string) => void): Promise<number> {
  const url = queueUrlOf(args.queue);
  if (url === undefined) throw new QueueUsageError('seedflow worker needs --queue redis://HOST:PORT (or SEEDFLOW_QUEUE)');
  if (args.store === undefined) throw new QueueUsageError('seedflow worker needs --store DIR: the shared store, as this machine sees it');
  const jobs = args.jobs === undefined ? availableParallelism() : Number(args.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new QueueUsageError(`--jobs must be a whole number of at least 1, got "${args.jobs ?? ''}"`);
  const name = args.name ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(name)) throw new QueueUsageError(`--name must be letters, digits, '.', '_' or '-', got "${name}"`);
  const idleExitMs = args.idleExit === undefined ? null : parseDuration(args.idleExit, '--idle-exit');
  const lock = process.env['SEEDFLOW_QUEUE_LOCK'];
  const lockMs = lock === undefined || lock === '' ? 30_000 : parseDuration(lock, 'SEEDFLOW_QUEUE_LOCK');
  if (lockMs < 100) throw new QueueUsageError('SEEDFLOW_QUEUE_LOCK must be at least 100ms');
  const { runWorker } = await import('../executor/queue-worker.js');
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await runWorker({ url, store: resolve(args.store), jobs, name, idleExitMs, lockMs, say }, controller.signal);
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** The rows `doctor --queue` adds: the Redis version, its eviction policy, and the live workers. */
export async function queueRows(url: string): Promise<[string, string][]> {
  const { liveWorkers } = await import('../executor/queue-worker.js');
  const { version, policy, workers } = await liveWorkers(url);
  const rows: [string, string][] = [
    ['queue', url],
    ['redis', version],
    ['maxmemory-policy', policy === 'noeviction' ? policy : `${policy} (set noeviction: Redis must never drop a queued job)`],
    ['live workers', String(workers.length)],
  ];
  for (const w of workers) rows.push([`  ${w.name}`, `${w.host} pid ${w.pid}, ${w.jobs} jobs, backend ${w.backend}, seedflow ${w.seedflow}, queue ${w.queue}`]);
  return rows;
}

export { QueueError };
