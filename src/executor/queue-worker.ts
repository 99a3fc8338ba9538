/**
 * `seedflow worker`: a long-lived process that takes the tasks of one store's
 * queue and executes them against its own view of that store, light stages in
 * process and heavy ones in its pool of worker processes, as a local run does.
 */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Store } from '../cache/store.js';
import { detectCompute } from '../ml/backend.js';
import { TaskError, toFailure } from './failure.js';
import { connectionOptions, encodeFailure, keepReconnecting, locateShipped, parseQueueUrl, queueName, reach, storeId, workerKey, type JobData, type JobNote, type JobResult, type WorkerInfo } from './queue-common.js';
import { executeTask, SEEDFLOW_VERSION, type TaskReporter } from './task.js';
import { WorkerPool } from './worker-pool.js';

/** How a worker is started. */
export interface WorkerOptions {
  readonly url: string;
  readonly store: string;
  readonly jobs: number;
  readonly name: string;
  /** Stop after this long without a job; null: run until stopped. */
  readonly idleExitMs: number | null;
  /** How long a job's lock lasts without renewal: a worker silent this long has its job run again elsewhere. */
  readonly lockMs: number;
  /** Lines for people (stderr). */
  readonly say: (message: string) => void;
}

/** How long a worker's announcement in Redis lives without renewal. */
const ANNOUNCE_MS = 15_000;

/**
 * Runs a worker until SIGTERM/SIGINT (finishing the stages it is running) or
 * until it has been idle for `idleExitMs`. Throws a QueueError when Redis
 * cannot be reached at start.
 */
export async function runWorker(options: WorkerOptions, stop: AbortSignal): Promise<void> {
  const address = parseQueueUrl(options.url);
  const announcer = keepReconnecting(await reach(address));
  announcer.on('error', () => {});
  const store = new Store(options.store);
  const name = queueName(await storeId(store.root));
  const pool = new WorkerPool(options.jobs, store.root);
  const info: WorkerInfo = { name: options.name, host: hostname(), pid: process.pid, backend: detectCompute(), seedflow: SEEDFLOW_VERSION, jobs: options.jobs };
  const announce = (): void => {
    void announcer.set(workerKey(name, options.name), JSON.stringify(info), 'PX', ANNOUNCE_MS).catch(() => undefined);
  };

  const process_ = async (job: Job<JobData, JobResult>): Promise<JobResult> => {
    const task = job.data.task;
    const note = (value: JobNote): void => {
      void job.updateProgress(value).catch(() => undefined);
    };
    note({ kind: 'started', worker: options.name });
    options.say(`seedflow worker ${options.name}: running ${task.id}`);
    const reporter: TaskReporter = {
      log: (level, message) => note({ kind: 'log', level, message }),
      progress: (progress) => note({ kind: 'progress', progress }),
    };
    try {
      const { located, problems } = await locateShipped(store.root, task, (paths) => store.hashFiles(paths));
      if (problems.length > 0) throw new TaskError({ reason: 'refused', message: problems.join('; ') });
      const controller = new AbortController();
      const outcome = task.heavy ? await pool.run(task, located, reporter, controller.signal) : await executeTask(task, located, store, reporter, controller.signal);
      return { ...outcome, worker: options.name };
    } catch (error) {
      // Every failure of a stage is final here: BullMQ re-runs only jobs whose worker died.
      throw new UnrecoverableError(encodeFailure(toFailure(error)));
    }
  };

  const worker = new Worker<JobData, JobResult>(name, process_, {
    connection: connectionOptions(address, true),
    concurrency: options.jobs,
    name: options.name,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    // A job whose worker died is run once more; if that worker dies too, the job fails as worker-lost.
    maxStalledCount: 1,
    autorun: false,
  });
  worker.on('error', (error) => options.say(`seedflow worker ${options.name}: ${error.message}`));

  let active = 0;
  let idle: NodeJS.Timeout | undefined;
  const finished = new Promise<void>((resolve) => {
    const close = (why: string): void => {
      options.say(`seedflow worker ${options.name}: ${why}`);
      if (idle !== undefined) clearTimeout(idle);
      // close() waits for the running jobs to finish and publish.
      void worker.close().catch(() => undefined).finally(() => resolve());
    };
    const armIdle = (): void => {
      if (options.idleExitMs === null || active > 0) return;
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(() => close('idle, stopping'), options.idleExitMs);
    };
    worker.on('active', () => {
      active++;
      if (idle !== undefined) clearTimeout(idle);
    });
    const ended = (): void => {
      active = Math.max(0, active - 1);
      armIdle();
    };
    worker.on('completed', ended);
    worker.on('failed', ended);
    stop.addEventListener('abort', () => close('stopping: finishing the running stages'), { once: true });
    armIdle();
  });

  announce();
  const heartbeat = setInterval(announce, ANNOUNCE_MS / 3);
  await worker.waitUntilReady();
  options.say(`seedflow worker ${options.name}: taking tasks of ${options.store} from ${options.url} (${options.jobs} at a time, ${info.backend})`);
  void worker.run().catch((error: unknown) => options.say(`seedflow worker ${options.name}: ${error instanceof Error ? error.message : String(error)}`));
  try {
    await finished;
  } finally {
    clearInterval(heartbeat);
    await announcer.del(workerKey(name, options.name)).catch(() => 0);
    announcer.disconnect();
    await pool.close();
  }
}

/** The live workers of a store's queue, as they announce themselves. */
export async function liveWorkers(url: string): Promise<{ readonly version: string; readonly policy: string; readonly workers: readonly (WorkerInfo & { readonly queue: string })[] }> {
  const client = await reach(parseQueueUrl(url));
  try {
    const server = await client.info('server');
    const version = /redis_version:(\S+)/.exec(server)?.[1] ?? 'unknown';
    const policy = ((await client.config('GET', 'maxmemory-policy')) as string[])[1] ?? 'unknown';
    const workers: (WorkerInfo & { queue: string })[] = [];
    let cursor = '0';
    // Bounded: a SCAN cursor returns to 0 after one pass over the keys.
    for (let pass = 0; pass < 10_000; pass++) {
      const [next, keys] = await client.scan(cursor, 'MATCH', 'seedflow:worker:*', 'COUNT', 100);
      for (const key of keys) {
        const text = await client.get(key);
        if (text === null) continue;
        const queue = key.split(':')[2] ?? '';
        try {
          workers.push({ ...(JSON.parse(text) as WorkerInfo), queue });
        } catch {
          // Not one of ours.
        }
      }
      cursor = next;
      if (cursor === '0') break;
    }
    return { version, policy, workers };
  } finally {
    client.disconnect();
  }
}
