/**
 * The submitting side of a run on a BullMQ queue: a TaskRunner that turns
 * each task into one job, ships the content it names by hash into the shared
 * store, and waits for the job's outcome. Planning, scheduling, the lock and
 * the history stay in the calling process; only execution moves.
 */
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Store } from '../cache/store.js';
import { detectCompute } from '../ml/backend.js';
import { TaskError, type Failure } from './failure.js';
import { connectionOptions, FAILURE_PREFIX, keepReconnecting, parseQueueUrl, queueName, reach, ship, storeId, type JobData, type JobNote, type JobResult, type QueueAddress } from './queue-common.js';
import type { TaskRunner } from './runner.js';
import type { Located, Task, TaskOutcome, TaskReporter } from './task.js';

/** A job this process waits for. */
interface Waiting {
  readonly reporter: TaskReporter;
  readonly resolve: (outcome: TaskOutcome) => void;
  readonly reject: (error: unknown) => void;
}

/** How often the submitter checks that Redis still answers, and after how many silent checks it gives up. */
const WATCH_MS = 500;
const WATCH_MISSES = 6;

/** The failure a job's failed reason describes. */
export function failureOfReason(reason: string): Failure {
  if (reason.startsWith(FAILURE_PREFIX)) {
    try {
      return JSON.parse(reason.slice(FAILURE_PREFIX.length)) as Failure;
    } catch {
      // Not ours after all: described below.
    }
  }
  // BullMQ's own reasons: a job whose worker kept dying ("job stalled more than allowable limit").
  return /stalled/i.test(reason) ? { reason: 'worker-lost', detail: `the job stalled too often: ${reason}` } : { reason: 'stage-threw', message: reason };
}

/** Runs every task as a job on the queue of the store, executed by `seedflow worker` processes. */
export class QueueRunner implements TaskRunner {
  private readonly waiting = new Map<string, Waiting>();
  private lost: string | null = null;
  private readonly watch: NodeJS.Timeout;
  /** Jobs being taken back from the queue after Ctrl-C: close() waits for them, so none is left queued. */
  private readonly removals: Promise<unknown>[] = [];

  private constructor(
    private readonly address: QueueAddress,
    private readonly store: Store,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly probe: Redis,
  ) {
    events.on('progress', ({ jobId, data }) => {
      const note = data as JobNote;
      const waiting = this.waiting.get(jobId);
      if (waiting === undefined || typeof note !== 'object' || note === null) return;
      if (note.kind === 'log') waiting.reporter.log(note.level, note.message);
      else if (note.kind === 'progress') waiting.reporter.progress(note.progress);
      else waiting.reporter.log('info', `running on worker ${note.worker}`);
    });
    events.on('completed', ({ jobId, returnvalue }) => {
      const waiting = this.waiting.get(jobId);
      if (waiting === undefined) return;
      this.waiting.delete(jobId);
      const value: unknown = typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue;
      waiting.resolve(value as JobResult);
    });
    events.on('failed', ({ jobId, failedReason }) => {
      const waiting = this.waiting.get(jobId);
      if (waiting === undefined) return;
      this.waiting.delete(jobId);
      waiting.reject(new TaskError(failureOfReason(failedReason)));
    });
    events.on('error', () => {
      // Connection errors surface through the watch below, once, as a lost queue.
    });
    queue.on('error', () => {});
    // Redis going away must stop the run, not hang it: ping it, and after several unanswered pings
    // fail every waiting task (their artifacts are published by workers atomically, or not at all).
    let misses = 0;
    let pinging = false;
    this.watch = setInterval(() => {
      if (pinging || this.lost !== null) return;
      pinging = true;
      probe.ping().then(() => { misses = 0; }, (error: unknown) => {
        misses++;
        if (misses >= WATCH_MISSES) this.loseQueue(error instanceof Error ? error.message : String(error));
      }).finally(() => { pinging = false; });
    }, WATCH_MS);
    this.watch.unref();
  }

  /** Connects to the queue of `store` at `url`; throws a QueueError naming the URL when Redis does not answer. */
  static async open(url: string, store: Store): Promise<QueueRunner> {
    const address = parseQueueUrl(url);
    const probe = keepReconnecting(await reach(address));
    probe.on('error', () => {});
    const name = queueName(await storeId(store.root));
    const queue = new Queue(name, { connection: connectionOptions(address, false) });
    const events = new QueueEvents(name, { connection: connectionOptions(address, false) });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    return new QueueRunner(address, store, queue, events, probe);
  }

  /** Why the queue was lost during the run, or null. */
  get lostReason(): string | null {
    return this.lost;
  }

  /** The URL of the queue. */
  get url(): string {
    return this.address.url;
  }

  private loseQueue(detail: string): void {
    this.lost = `lost the queue at ${this.address.url}: ${detail}`;
    for (const [id, waiting] of this.waiting) {
      this.waiting.delete(id);
      waiting.reject(new TaskError({ reason: 'worker-lost', detail: this.lost }));
    }
  }

  /** Workers are expected to compute as this machine does; one that does not refuses numeric tasks. */
  compute(): string {
    return detectCompute();
  }

  where(): 'queue' {
    return 'queue';
  }

  async run(task: Task, located: Located, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome> {
    if (this.lost !== null) throw new TaskError({ reason: 'worker-lost', detail: this.lost });
    await ship(this.store.root, task, located);
    const jobId = randomUUID();
    const result = new Promise<TaskOutcome>((resolve, reject) => {
      this.waiting.set(jobId, { reporter, resolve, reject });
    });
    const onAbort = (): void => {
      const waiting = this.waiting.get(jobId);
      if (waiting === undefined) return;
      this.waiting.delete(jobId);
      // A job not started yet is taken back; a running one finishes on its worker (the work is idempotent by key).
      this.removals.push(this.queue.remove(jobId).catch(() => 0));
      waiting.reject(new TaskError({ reason: 'interrupted' }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      // A user error or a refusal fails once: no retries. A stalled job (its worker died) is run again by
      // BullMQ's stall check, up to the workers' maxStalledCount.
      await this.queue.add(task.stage, { task } satisfies JobData, { jobId, attempts: 1, removeOnComplete: { age: 3600 }, removeOnFail: { age: 24 * 3600 } });
    } catch (error) {
      this.waiting.delete(jobId);
      signal.removeEventListener('abort', onAbort);
      throw new TaskError({ reason: 'worker-lost', detail: `could not submit to ${this.address.url}: ${error instanceof Error ? error.message : String(error)}` });
    }
    try {
      return await result;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.watch);
    // Bounded: with Redis gone, BullMQ's close would wait for reconnections that never come.
    const bounded = (p: Promise<unknown>): Promise<unknown> => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    await bounded(Promise.all(this.removals));
    await Promise.all([bounded(this.events.close()), bounded(this.queue.close())]);
    this.probe.disconnect();
  }
}
