import type { StageSource } from '../plan/types.js';
import { makeContext } from '../stages/context.js';
import { makeInputs, openArtifact } from '../stages/inputs.js';
import { loadStage } from '../stages/registry.js';
import { summaryProblem } from '../stages/summary.js';
import { StageUserError, type StageProgress } from '../stages/types.js';
import type { JsonValue } from '../util/json.js';

/** One stage instance to execute: everything a runner (local or remote) needs, as plain data. */
export interface Task {
  readonly id: string;
  readonly stage: string;
  readonly key: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
  readonly source: StageSource;
  readonly heavy: boolean;
  readonly params: Readonly<Record<string, JsonValue>>;
  /** For each need, the folders of its published artifacts. */
  readonly inputs: Readonly<Record<string, readonly string[]>>;
  /** An empty folder for the output. */
  readonly outDir: string;
  /** External files found at planning time (the `files` hook's answer). */
  readonly files: readonly string[];
}

/** How a task reports while it runs. */
export interface TaskReporter {
  log(level: 'debug' | 'info' | 'warn', message: string): void;
  progress(progress: StageProgress): void;
}

/** A failure, as plain data that crosses process boundaries. */
export interface TaskFailure {
  readonly message: string;
  /** A user's problem (bad data, missing file): shown without a stack. */
  readonly user: boolean;
  readonly hint?: string;
  readonly stack?: string;
}

/** Thrown by runners when a task fails. */
export class TaskError extends Error {
  constructor(readonly failure: TaskFailure) {
    super(failure.message);
    this.name = 'TaskError';
  }
}

/** Turns anything thrown by a stage into a TaskFailure. */
export function toFailure(error: unknown): TaskFailure {
  if (error instanceof TaskError) return error.failure;
  if (error instanceof StageUserError) return { message: error.message, user: true, ...(error.hint !== undefined ? { hint: error.hint } : {}) };
  if (error instanceof Error) return { message: error.message, user: false, ...(error.stack !== undefined ? { stack: error.stack } : {}) };
  return { message: String(error), user: false };
}

/** Runs a task in this process: loads the stage, opens its inputs, calls `run`. */
export async function executeTask(task: Task, reporter: TaskReporter, signal: AbortSignal): Promise<JsonValue> {
  const stage = await loadStage(task.source);
  const byNeed: Record<string, Awaited<ReturnType<typeof openArtifact>>[]> = {};
  for (const [need, dirs] of Object.entries(task.inputs)) byNeed[need] = await Promise.all(dirs.map(openArtifact));
  const ctx = makeContext({
    outDir: task.outDir,
    signal,
    instance: { stage: task.stage, key: task.key, matrix: task.matrix },
    log: (level, message) => reporter.log(level, message),
    progress: (progress) => reporter.progress(progress),
    files: task.files,
  });
  const summary: unknown = await stage.run(makeInputs(byNeed), task.params as never, ctx);
  signal.throwIfAborted();
  if (summary === undefined || summary === null) return null;
  const problem = summaryProblem(summary);
  if (problem !== null) {
    throw new StageUserError(
      `stage type "${stage.name}" returned a summary of the wrong shape: ${problem}`,
      'return { metrics: { name: number | null }, timings: { name: seconds }, details?: { name: JSON } } from run, or nothing',
    );
  }
  return summary as JsonValue;
}
