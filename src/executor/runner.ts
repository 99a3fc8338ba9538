import type { Store } from '../cache/store.js';
import { detectCompute } from '../ml/backend.js';
import { executeTask, type Located, type Task, type TaskOutcome, type TaskReporter } from './task.js';
import { WorkerPool } from './worker-pool.js';

/**
 * Where tasks execute. The scheduler only sees this interface: a task is plain
 * data naming artifacts by key, and the runner's executors resolve those keys
 * against their own view of the store, so a backend that sends tasks to a job
 * queue can replace the local one without touching planning or scheduling.
 */
export interface TaskRunner {
  /**
   * What numeric tasks will compute on where this runner executes them: the
   * backend written into their keys. An executor that finds itself on another
   * refuses the task instead of computing something else.
   */
  compute(): string;
  /**
   * Executes one task, resolving with its outcome (the published artifact's
   * manifest) or rejecting with a TaskError that carries a Failure. `located`
   * says where on this machine the content the task names by hash is (a local
   * module's code, external files); a runner that executes elsewhere ships it.
   */
  run(task: Task, located: Located, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome>;
  /** Where a task will run, for the events. */
  where(task: Task): 'process' | 'worker' | 'queue';
  /**
   * Hears what the run holds before its first task, so workers can start (and load TensorFlow)
   * while the first, light stages run. Optional: a runner may start everything on demand.
   */
  prepare?(work: { readonly heavy: number; readonly numeric: boolean }): void;
  /** Releases workers or connections. */
  close(): Promise<void>;
}

/** Runs light stages in this process and heavy ones in a pool of worker processes, all on one store folder. */
export class LocalRunner implements TaskRunner {
  private readonly pool: WorkerPool;

  constructor(jobs: number, private readonly store: Store) {
    this.pool = new WorkerPool(jobs, store.root);
  }

  compute(): string {
    return detectCompute();
  }

  where(task: Task): 'process' | 'worker' {
    return task.heavy ? 'worker' : 'process';
  }

  prepare(work: { readonly heavy: number; readonly numeric: boolean }): void {
    this.pool.warm(work.heavy, work.numeric);
  }

  run(task: Task, located: Located, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome> {
    if (task.heavy) return this.pool.run(task, located, reporter, signal);
    return executeTask(task, located, this.store, reporter, signal);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
