import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ArtifactConflictError, type Manifest } from '../cache/artifact.js';
import type { KeyRecord } from '../cache/key.js';
import type { ArtifactStore } from '../cache/store.js';
import { makeContext } from '../stages/context.js';
import { loadStage } from '../stages/registry.js';
import { makeInputs, openArtifact } from '../stages/inputs.js';
import { summaryProblem } from '../stages/summary.js';
import { StageUserError, type ArtifactReader, type LineageEntry, type StageProgress } from '../stages/types.js';
import type { JsonValue } from '../util/json.js';
import { TaskError } from './failure.js';

/** The layout of a task; a runner refuses a task of another format. 2: inputs name their instance's stage and matrix. */
export const TASK_FORMAT = 2;

/** The version of this seedflow, which every task names and every runner checks. */
export const SEEDFLOW_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/** One artifact a task reads: the instance that made it, and its key. */
export interface TaskInput {
  readonly id: string;
  readonly key: string;
  /** The stage and matrix values of the instance it stands for, which the reader reports (twin instances share one artifact). */
  readonly stage: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
}

/** Where a task's stage code is: built in, or a local module named by the SHA-256 of its code and its file name. */
export type TaskSource =
  | { readonly kind: 'builtin'; readonly name: string }
  | { readonly kind: 'module'; readonly name: string; readonly sha256: string };

/** Content a task names by hash (a local module's code, an external file): its file name and SHA-256. */
export interface TaskContent {
  readonly name: string;
  readonly sha256: string;
}

/**
 * Where the executing process finds the content a task names by hash: SHA-256
 * to a path on its own disk. It travels beside the task, never inside it: the
 * local runner gives the paths planning found, a queue worker the copies
 * shipped into the shared store.
 */
export type Located = Readonly<Record<string, string>>;

/** The path `located` gives for a hash (own properties only: a hash never reaches Object.prototype). */
export function locate(located: Located, sha256: string): string | undefined {
  return Object.hasOwn(located, sha256) ? located[sha256] : undefined;
}

/**
 * One stage instance to execute, as plain data that names artifacts by key and
 * content by hash, and nothing by where it sits on the submitting machine's
 * disk. Whoever executes it resolves the keys against its own store and the
 * hashes through its own `Located`, makes its own output folder, verifies the
 * inputs and publishes.
 */
export interface Task {
  readonly format: typeof TASK_FORMAT;
  /** The seedflow version that planned it: a runner of another version refuses it. */
  readonly seedflow: string;
  readonly id: string;
  readonly stage: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
  /** The stage type's name (`uses`, or a module's exported name). */
  readonly type: string;
  readonly source: TaskSource;
  readonly heavy: boolean;
  /** A gathering stage keeps no lineage of its inputs. */
  readonly gather: boolean;
  readonly params: Readonly<Record<string, JsonValue>>;
  /** For each need, the artifacts it reads. */
  readonly inputs: Readonly<Record<string, readonly TaskInput[]>>;
  /** The key of the artifact it makes, and the record that key hashes. */
  readonly key: string;
  readonly record: KeyRecord;
  /** External files found at planning time (the `files` hook's answer), by name and hash, in the hook's order. */
  readonly files: readonly TaskContent[];
  /** What a numeric stage must compute on (the key record's backend); null for the others. */
  readonly compute: string | null;
}

/** How a task reports while it runs. */
export interface TaskReporter {
  log(level: 'debug' | 'info' | 'warn', message: string): void;
  progress(progress: StageProgress): void;
}

/** What a finished task gives back. */
export interface TaskOutcome {
  readonly summary: JsonValue;
  /** The manifest of the artifact now in the store under the task's key. */
  readonly manifest: Manifest;
  /** This execution's copy became the artifact, or a sound copy was there first. */
  readonly outcome: 'published' | 'existing';
  /** Peak resident memory of the process that ran it, in MB (for workers). */
  readonly peakRssMb?: number;
  /** The name of the queue worker that ran it (for runs on a queue). */
  readonly worker?: string;
}

/**
 * Why this process cannot run the task exactly as keyed, or null. `compute` is
 * what this process computes on (asked only of numeric tasks).
 */
export async function refusal(task: Task, located: Located, compute: () => Promise<{ readonly compute: string; readonly notes: readonly string[] }>): Promise<TaskError | null> {
  if (task.format !== TASK_FORMAT) return new TaskError({ reason: 'refused', message: `task format ${String(task.format)} is not ${TASK_FORMAT}` });
  if (task.seedflow !== SEEDFLOW_VERSION) {
    return new TaskError({ reason: 'refused', message: `the task was planned by seedflow ${task.seedflow}, this is ${SEEDFLOW_VERSION}`, hint: 'run the same seedflow version everywhere' });
  }
  if (task.source.kind === 'module') {
    const path = locate(located, task.source.sha256);
    if (path === undefined) return new TaskError({ reason: 'refused', message: `the stage module ${task.source.name} (SHA-256 ${task.source.sha256.slice(0, 12)}) is not available here` });
    let sha256: string;
    try {
      sha256 = createHash('sha256').update(await readFile(path)).digest('hex');
    } catch (error) {
      return new TaskError({ reason: 'refused', message: `cannot read the stage module ${task.source.name}: ${error instanceof Error ? error.message : String(error)}` });
    }
    if (sha256 !== task.source.sha256) {
      return new TaskError({ reason: 'refused', message: `the stage module ${task.source.name} changed since the run was planned`, hint: 'run again to plan with the new code' });
    }
  }
  for (const file of task.files) {
    if (locate(located, file.sha256) === undefined) return new TaskError({ reason: 'refused', message: `the file ${file.name} (SHA-256 ${file.sha256.slice(0, 12)}) the task reads is not available here` });
  }
  if (task.compute !== null) {
    const here = await compute();
    if (here.compute !== task.compute) {
      return new TaskError({
        reason: 'refused',
        message: `the task is keyed for the ${task.compute} backend, but this process computes on ${here.compute}${here.notes.length > 0 ? ` (${here.notes.join('; ')})` : ''}`,
        hint: 'fix the backend (seedflow doctor), or choose one with SEEDFLOW_BACKEND / SEEDFLOW_MATMUL everywhere the run plans and executes',
      });
    }
  }
  return null;
}

/** What this process computes numeric stages on, loading TensorFlow.js once. */
export async function localCompute(): Promise<{ readonly compute: string; readonly notes: readonly string[] }> {
  const notes: string[] = [];
  const { loadTf } = await import('../ml/backend.js');
  const loaded = await loadTf((message) => notes.push(message));
  return { compute: loaded.compute, notes };
}

/**
 * Executes a task against a store: refuses one it cannot run as keyed,
 * verifies and opens its inputs, runs the stage into a draft folder and
 * publishes it. Failures are thrown as TaskErrors carrying data.
 */
export async function executeTask(task: Task, located: Located, store: ArtifactStore, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome> {
  const refused = await refusal(task, located, localCompute);
  if (refused !== null) throw refused;
  const started = Date.now();
  const byNeed: Record<string, ArtifactReader[]> = {};
  const lineage: Record<string, LineageEntry> = {};
  for (const [need, inputs] of Object.entries(task.inputs)) {
    const readers: ArtifactReader[] = [];
    for (const input of inputs) {
      const detail = await store.verify(input.key);
      if (detail !== null) throw new TaskError({ reason: 'input-damaged', input: input.id, key: input.key, detail });
      const { dir, manifest } = await store.open(input.key);
      if (!task.gather) Object.assign(lineage, manifest.lineage ?? {});
      readers.push({ ...(await openArtifact(dir)), stage: input.stage, matrix: input.matrix });
    }
    byNeed[need] = readers;
  }
  const stage = await loadStage(task.source.kind === 'builtin' ? task.source : { kind: 'module', path: locate(located, task.source.sha256) ?? '', sha256: task.source.sha256 });
  const draft = await store.draft(task.key);
  try {
    const ctx = makeContext({
      outDir: draft.dir,
      signal,
      instance: { stage: task.stage, key: task.key, matrix: task.matrix },
      log: (level, message) => reporter.log(level, message),
      progress: (progress) => reporter.progress(progress),
      files: task.files.map((file) => locate(located, file.sha256) ?? ''),
    });
    const returned: unknown = await stage.run(makeInputs(byNeed, task.stage), task.params as never, ctx);
    signal.throwIfAborted();
    const problem = returned === undefined || returned === null ? null : summaryProblem(returned);
    if (problem !== null) {
      throw new StageUserError(
        `stage type "${stage.name}" returned a summary of the wrong shape: ${problem}`,
        'return { metrics: { name: number | null }, timings: { name: seconds }, details?: { name: JSON } } from run, or nothing',
      );
    }
    const summary = (returned ?? null) as JsonValue;
    lineage[task.stage] = { type: task.type, matrix: task.matrix, summary };
    const { manifest, outcome } = await draft.publish({
      key: task.key, stage: task.stage, type: task.type, matrix: task.matrix, record: task.record,
      summary, lineage, createdAt: new Date().toISOString(), durationMs: Date.now() - started,
    });
    return { summary: manifest.summary, manifest, outcome };
  } catch (error) {
    await draft.discard();
    if (error instanceof ArtifactConflictError) throw new TaskError({ reason: 'input-damaged', input: task.id, key: task.key, detail: error.detail });
    throw error;
  }
}
