import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { StageProgress } from '../stages/types.js';
import { TaskError, type Failure } from './failure.js';
import type { Located, Task, TaskOutcome, TaskReporter } from './task.js';

/** Messages from the parent to a worker. */
export type ParentMessage =
  | { readonly type: 'run'; readonly task: Task; readonly located: Located }
  | { readonly type: 'abort'; readonly task: string }
  /** Load TensorFlow now, before the first task needs it. */
  | { readonly type: 'warm' };

/** Messages from a worker to the parent. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  /** TensorFlow is loaded (answers 'warm'). */
  | { readonly type: 'warmed' }
  | { readonly type: 'log'; readonly task: string; readonly level: 'debug' | 'info' | 'warn'; readonly message: string }
  | { readonly type: 'progress'; readonly task: string; readonly progress: StageProgress }
  | { readonly type: 'done'; readonly task: string; readonly outcome: TaskOutcome }
  | { readonly type: 'failed'; readonly task: string; readonly failure: Failure };

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

interface Worker {
  readonly child: ChildProcess;
  busy: boolean;
}

/**
 * A pool of worker processes, so CPU-heavy stages use several cores. The
 * TensorFlow wasm backend is single-threaded, so processes are what makes
 * a second core work. Workers start on first use and are reused.
 */
export class WorkerPool {
  private readonly workers: Worker[] = [];

  /** `store` is the root of the store the workers resolve tasks' keys against. */
  constructor(private readonly size: number, private readonly store: string) {}

  /** Runs a task on an idle worker (starting one if the pool is not full); also returns the worker's peak memory so far. */
  async run(task: Task, located: Located, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome> {
    const worker = this.idle();
    worker.busy = true;
    try {
      return await new Promise<TaskOutcome>((resolve, reject) => {
        const onMessage = (message: WorkerMessage): void => {
          if (message.type === 'ready' || message.type === 'warmed' || message.task !== task.id) return;
          if (message.type === 'log') reporter.log(message.level, message.message);
          else if (message.type === 'progress') reporter.progress(message.progress);
          else {
            cleanup();
            if (message.type === 'done') resolve(message.outcome);
            else reject(new TaskError(message.failure));
          }
        };
        const onExit = (code: number | null, sig: NodeJS.Signals | null): void => {
          cleanup();
          this.forget(worker);
          reject(new TaskError({ reason: 'worker-lost', detail: sig !== null ? `signal ${sig}` : `exit code ${String(code)}` }));
        };
        const onAbort = (): void => {
          worker.child.send({ type: 'abort', task: task.id } satisfies ParentMessage);
        };
        const cleanup = (): void => {
          worker.child.off('message', onMessage);
          worker.child.off('exit', onExit);
          signal.removeEventListener('abort', onAbort);
        };
        worker.child.on('message', onMessage);
        worker.child.on('exit', onExit);
        signal.addEventListener('abort', onAbort, { once: true });
        worker.child.send({ type: 'run', task, located } satisfies ParentMessage);
      });
    } finally {
      worker.busy = false;
    }
  }

  /**
   * Starts up to `tasks` workers (never more than the pool's size) ahead of the first task, so that
   * their start-up overlaps the light stages that run first in this process. When `numeric` work is
   * coming, each loads TensorFlow at once, one after another: loading them all together would take
   * every core from the stage running here.
   */
  warm(tasks: number, numeric: boolean): void {
    const wanted = Math.min(tasks, this.size);
    const next = (): void => {
      if (this.workers.length >= wanted) return;
      const worker = this.spawn();
      if (!numeric) return next();
      const onMessage = (message: WorkerMessage): void => {
        if (message.type !== 'warmed') return;
        worker.child.off('message', onMessage);
        next();
      };
      worker.child.on('message', onMessage);
      worker.child.send({ type: 'warm' } satisfies ParentMessage);
    };
    next();
  }

  private idle(): Worker {
    const free = this.workers.find((w) => !w.busy && w.child.connected);
    if (free !== undefined) return free;
    if (this.workers.length >= this.size) throw new Error('worker pool exhausted: more heavy tasks than --jobs');
    return this.spawn();
  }

  private spawn(): Worker {
    // A worker's own output goes to stderr: stdout carries only events (--json).
    const child = fork(WORKER, [this.store], { serialization: 'advanced', stdio: ['ignore', 2, 2, 'ipc'] });
    const worker: Worker = { child, busy: false };
    this.workers.push(worker);
    // A worker that dies between tasks leaves its place to a new one (one dying mid-task is handled by run).
    child.once('exit', () => {
      if (!worker.busy) this.forget(worker);
    });
    return worker;
  }

  private forget(worker: Worker): void {
    const at = this.workers.indexOf(worker);
    if (at >= 0) this.workers.splice(at, 1);
  }

  /** Stops every worker; running ones are killed after `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    await Promise.all(this.workers.map(async ({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }));
    this.workers.length = 0;
  }
}
