import { StageUserError } from '../stages/types.js';
import { describeFsError } from '../util/files.js';

/** Every reason a stage instance can fail to produce its artifact in a run. */
export const FAILURE_REASONS = [
  'stage-threw',
  'user-error',
  'disk',
  'input-damaged',
  'refused',
  'worker-lost',
  'dependency-failed',
  'run-stopping',
  'not-selected',
  'interrupted',
] as const;

/** The stage's code (or seedflow's) threw: a bug, shown with its stack. */
export interface StageThrew {
  readonly reason: 'stage-threw';
  readonly message: string;
  readonly stack?: string;
}

/** A problem the user must fix (bad data, a missing input): shown without a stack. */
export interface UserFailure {
  readonly reason: 'user-error';
  readonly message: string;
  readonly hint?: string;
}

/** The disk refused a write (full, over quota, read-only) while the stage ran or its output was published. */
export interface DiskFailure {
  readonly reason: 'disk';
  /** "no space left on the device". */
  readonly message: string;
  /** The file or folder being written, when the system named it. */
  readonly path?: string;
}

/** Error codes that mean the disk, not the stage, is at fault. */
const DISK_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EROFS']);

/** An artifact the task reads (or the one it would publish over) does not verify. */
export interface InputDamaged {
  readonly reason: 'input-damaged';
  /** The instance that made the artifact. */
  readonly input: string;
  readonly key: string;
  /** What the check found: "file x.npy does not match its checksum". */
  readonly detail: string;
}

/** The process asked to run the task cannot run it as keyed (another backend, version or module code). */
export interface Refused {
  readonly reason: 'refused';
  readonly message: string;
  readonly hint?: string;
}

/** The process running the task died or was lost before it answered. */
export interface WorkerLost {
  readonly reason: 'worker-lost';
  /** "signal SIGKILL", "exit code 1". */
  readonly detail: string;
}

/** Not started: an instance it needs did not complete. */
export interface DependencyFailed {
  readonly reason: 'dependency-failed';
  readonly dependency: string;
}

/** Not started: an earlier failure stopped the run (no --keep-going). */
export interface RunStopping {
  readonly reason: 'run-stopping';
}

/** Left out of the run by --only. */
export interface NotSelected {
  readonly reason: 'not-selected';
}

/** Stopped by Ctrl-C (or SIGTERM) while running or waiting. */
export interface Interrupted {
  readonly reason: 'interrupted';
}

/**
 * Why an instance did not produce its artifact, as data that crosses process
 * boundaries. Consumers switch on `reason` exhaustively, so a new reason fails
 * to compile wherever it is not handled.
 */
export type Failure = StageThrew | UserFailure | DiskFailure | InputDamaged | Refused | WorkerLost | DependencyFailed | RunStopping | NotSelected | Interrupted;

/** Thrown by runners and executors when a task fails; carries the failure as data. */
export class TaskError extends Error {
  constructor(readonly failure: Failure) {
    super(describeFailure(failure).message);
    this.name = 'TaskError';
  }
}

/** Turns anything thrown while executing a task into a Failure. */
export function toFailure(error: unknown): Failure {
  if (error instanceof TaskError) return error.failure;
  if (error instanceof StageUserError) return { reason: 'user-error', message: error.message, ...(error.hint !== undefined ? { hint: error.hint } : {}) };
  // A module shipped to a queue worker cannot import seedflow's class: an Error named StageUserError is one too.
  if (error instanceof Error && error.name === 'StageUserError') {
    const hint: unknown = (error as Error & { hint?: unknown }).hint;
    return { reason: 'user-error', message: error.message, ...(typeof hint === 'string' ? { hint } : {}) };
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (error instanceof Error && typeof code === 'string' && DISK_CODES.has(code)) {
    const path = (error as NodeJS.ErrnoException).path;
    return { reason: 'disk', message: describeFsError(error), ...(typeof path === 'string' ? { path } : {}) };
  }
  if (error instanceof Error) return { reason: 'stage-threw', message: error.message, ...(error.stack !== undefined ? { stack: error.stack } : {}) };
  return { reason: 'stage-threw', message: String(error) };
}

/** A failure in words for people: one line, and a hint where there is something to do. */
export function describeFailure(failure: Failure): { readonly message: string; readonly hint?: string } {
  switch (failure.reason) {
    case 'stage-threw':
      return { message: failure.message, hint: 'this looks like a bug in the stage; the run log in the store has the stack' };
    case 'user-error':
      return failure.hint === undefined ? { message: failure.message } : { message: failure.message, hint: failure.hint };
    case 'disk':
      return { message: `${failure.message}${failure.path === undefined ? '' : `: ${failure.path}`}`, hint: 'free some space (or run with --store on another disk) and run again: completed stages are cached' };
    case 'input-damaged':
      return { message: `artifact of ${failure.input} is damaged (${failure.detail}); it was moved aside`, hint: 'run again to recompute it' };
    case 'refused':
      return failure.hint === undefined ? { message: failure.message } : { message: failure.message, hint: failure.hint };
    case 'worker-lost':
      return { message: `the process running the stage was lost (${failure.detail})`, hint: 'run again: completed stages are cached' };
    case 'dependency-failed':
      return { message: `not run: ${failure.dependency} did not complete` };
    case 'run-stopping':
      return { message: 'not started: the run is stopping' };
    case 'not-selected':
      return { message: 'not selected by --only' };
    case 'interrupted':
      return { message: 'interrupted' };
  }
}

/** How an instance that failed for this reason ended: it ran and failed, never started, or was stopped. */
export function endStatusOf(failure: Failure): 'failed' | 'skipped' | 'interrupted' {
  switch (failure.reason) {
    case 'stage-threw':
    case 'user-error':
    case 'disk':
    case 'input-damaged':
    case 'refused':
    case 'worker-lost':
      return 'failed';
    case 'dependency-failed':
    case 'run-stopping':
    case 'not-selected':
      return 'skipped';
    case 'interrupted':
      return 'interrupted';
  }
}
