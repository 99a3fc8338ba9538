import type { JsonValue } from '../util/json.js';

/** What a finished task gives back. */
export interface TaskOutcome {
  readonly summary: JsonValue;
  /** Peak resident memory of the process that ran it, in MB (for workers). */
  readonly peakRssMb?: number;
}
import { executeTask, type Task, type TaskReporter } from './task.js';
import { WorkerPool } from './worker-pool.js';

/**
 * Where tasks execute. The scheduler only sees this interface, so a backend
 * that sends tasks to a real job queue (tasks are plain data, artifacts are
 * folders) can replace the local one without touching planning or scheduling.
 */
export interface TaskRunner {
  /**
   * Executes one task, resolving with the stage's summary (and, where known,
   * the peak memory of the process that ran it) or rejecting with a TaskError.
   */
  run(task: Task, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome>;
  /** Where a task will run, for the events. */
  where(task: Task): 'process' | 'worker';
  /**
   * Hears what the run holds before its first task, so workers can start (and load TensorFlow)
   * while the first, light stages run. Optional: a runner may start everything on demand.
   */
  prepare?(work: { readonly heavy: number; readonly numeric: boolean }): void;
  /** Releases workers or connections. */
  close(): Promise<void>;
}

/** Runs light stages in this process and heavy ones in a pool of worker processes. */
export class LocalRunner implements TaskRunner {
  private readonly pool: WorkerPool;

  constructor(jobs: number) {
    this.pool = new WorkerPool(jobs);
  }

  where(task: Task): 'process' | 'worker' {
    return task.heavy ? 'worker' : 'process';
  }

  prepare(work: { readonly heavy: number; readonly numeric: boolean }): void {
    this.pool.warm(work.heavy, work.numeric);
  }

  async run(task: Task, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome> {
    if (task.heavy) return this.pool.run(task, reporter, signal);
    return { summary: await executeTask(task, reporter, signal) };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
