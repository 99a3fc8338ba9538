import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { ArtifactConflictError, type Manifest } from '../cache/artifact.js';
import type { KeyRecord } from '../cache/key.js';
import type { ArtifactStore } from '../cache/store.js';
import type { StageSource } from '../plan/types.js';
import { makeContext } from '../stages/context.js';
import { loadStage } from '../stages/registry.js';
import { makeInputs, openArtifact } from '../stages/inputs.js';
import { summaryProblem } from '../stages/summary.js';
import { StageUserError, type ArtifactReader, type LineageEntry, type StageProgress } from '../stages/types.js';
import type { JsonValue } from '../util/json.js';
import { TaskError } from './failure.js';

/** The layout of a task; a runner refuses a task of another format. */
export const TASK_FORMAT = 1;

/** The version of this seedflow, which every task names and every runner checks. */
export const SEEDFLOW_VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/** One artifact a task reads: the instance that made it, and its key. */
export interface TaskInput {
  readonly id: string;
  readonly key: string;
}

/**
 * One stage instance to execute, as plain data that names artifacts by key and
 * nothing by where it sits on the submitting machine's disk (except a local
 * module's path, checked by its hash, and the external files the `files` hook
 * found, whose hashes are in the key record). Whoever executes it resolves the
 * keys against its own store, makes its own output folder, verifies the inputs
 * and publishes.
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
  readonly source: StageSource;
  readonly heavy: boolean;
  /** A gathering stage keeps no lineage of its inputs. */
  readonly gather: boolean;
  readonly params: Readonly<Record<string, JsonValue>>;
  /** For each need, the artifacts it reads. */
  readonly inputs: Readonly<Record<string, readonly TaskInput[]>>;
  /** The key of the artifact it makes, and the record that key hashes. */
  readonly key: string;
  readonly record: KeyRecord;
  /** External files found at planning time (the `files` hook's answer). */
  readonly files: readonly string[];
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
}

/**
 * Why this process cannot run the task exactly as keyed, or null. `compute` is
 * what this process computes on (asked only of numeric tasks).
 */
export async function refusal(task: Task, compute: () => Promise<{ readonly compute: string; readonly notes: readonly string[] }>): Promise<TaskError | null> {
  if (task.format !== TASK_FORMAT) return new TaskError({ reason: 'refused', message: `task format ${String(task.format)} is not ${TASK_FORMAT}` });
  if (task.seedflow !== SEEDFLOW_VERSION) {
    return new TaskError({ reason: 'refused', message: `the task was planned by seedflow ${task.seedflow}, this is ${SEEDFLOW_VERSION}`, hint: 'run the same seedflow version everywhere' });
  }
  if (task.source.kind === 'module') {
    let sha256: string;
    try {
      sha256 = createHash('sha256').update(await readFile(task.source.path)).digest('hex');
    } catch (error) {
      return new TaskError({ reason: 'refused', message: `cannot read the stage module ${task.source.path}: ${error instanceof Error ? error.message : String(error)}` });
    }
    if (sha256 !== task.source.sha256) {
      return new TaskError({ reason: 'refused', message: `the stage module ${task.source.path} changed since the run was planned`, hint: 'run again to plan with the new code' });
    }
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
export async function executeTask(task: Task, store: ArtifactStore, reporter: TaskReporter, signal: AbortSignal): Promise<TaskOutcome> {
  const refused = await refusal(task, localCompute);
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
      readers.push(await openArtifact(dir));
    }
    byNeed[need] = readers;
  }
  const stage = await loadStage(task.source);
  const draft = await store.draft(task.key);
  try {
    const ctx = makeContext({
      outDir: draft.dir,
      signal,
      instance: { stage: task.stage, key: task.key, matrix: task.matrix },
      log: (level, message) => reporter.log(level, message),
      progress: (progress) => reporter.progress(progress),
      files: task.files,
    });
    const returned: unknown = await stage.run(makeInputs(byNeed), task.params as never, ctx);
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
