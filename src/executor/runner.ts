import type { JsonValue } from '../util/json.js';
import { executeTask, type Task, type TaskReporter } from './task.js';
import { WorkerPool } from './worker-pool.js';

/**
 * Where tasks execute. The scheduler only sees this interface, so a backend
 * that sends tasks to a real job queue (tasks are plain data, artifacts are
 * folders) can replace the local one without touching planning or scheduling.
 */
export interface TaskRunner {
  /** Executes one task, resolving with the stage's summary or rejecting with a TaskError. */
  run(task: Task, reporter: TaskReporter, signal: AbortSignal): Promise<JsonValue>;
  /** Where a task will run, for the events. */
  where(task: Task): 'process' | 'worker';
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

  run(task: Task, reporter: TaskReporter, signal: AbortSignal): Promise<JsonValue> {
    return task.heavy ? this.pool.run(task, reporter, signal) : executeTask(task, reporter, signal);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
