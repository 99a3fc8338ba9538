import PQueue from 'p-queue';
import type { ArtifactState, IndexEntry, LockHolder, Store } from '../cache/store.js';
import type { JsonValue } from '../util/json.js';
import { InstanceGraph } from '../plan/instance-graph.js';
import type { InstanceState } from '../plan/states.js';
import type { KeyedInstance, Plan } from '../plan/types.js';
import type { EndStatus, EventSink } from './events.js';
import { endStatusOf, toFailure, type Failure } from './failure.js';
import type { TaskRunner } from './runner.js';
import { basename } from 'node:path';
import { SEEDFLOW_VERSION, TASK_FORMAT, type Located, type Task, type TaskContent, type TaskInput } from './task.js';

/** How to execute a plan. */
export interface ScheduleOptions {
  readonly jobs: number;
  /** Finish independent branches after a failure instead of stopping. */
  readonly keepGoing: boolean;
  /** Aborted on Ctrl-C: nothing new starts and running stages are asked to stop. */
  readonly signal: AbortSignal;
  /** The artifacts the decision saw, by key: one that appears later was computed by another run, and is used. */
  readonly found: ReadonlyMap<string, ArtifactState>;
  /** Written into the claims this run takes, so a waiting run can say whom it waits for. */
  readonly command: string;
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether two readings of a claim show the same taking of it. */
function sameHolder(a: LockHolder | null | undefined, b: LockHolder): boolean {
  return a != null && a.pid === b.pid && a.host === b.host && a.startedAt === b.startedAt && a.token === b.token;
}

/** The outcome of executing a plan. */
export interface ScheduleResult {
  readonly status: 'success' | 'failed' | 'interrupted';
  readonly counts: Readonly<Record<EndStatus | 'cached', number>>;
}

/** An external file of an instance by name and hash (the hash its key record holds). */
function contentOf(instance: KeyedInstance, path: string): TaskContent {
  const name = basename(path);
  return { name, sha256: Object.hasOwn(instance.record.files, name) ? instance.record.files[name] ?? '' : '' };
}

/** The task that executes an instance: plain data, its inputs named by key, its module and files by hash. */
export function taskOf(instance: KeyedInstance, graph: InstanceGraph<KeyedInstance>, compute: string): Task {
  const inputs: Record<string, TaskInput[]> = {};
  for (const [need, ids] of Object.entries(instance.needs)) {
    inputs[need] = ids.map((id) => {
      const node = graph.node(id);
      return { id, key: node?.key ?? '', stage: node?.stage ?? need, matrix: node?.matrix ?? {} };
    });
  }
  const source = instance.type.source;
  return {
    format: TASK_FORMAT, seedflow: SEEDFLOW_VERSION,
    id: instance.id, stage: instance.stage, matrix: instance.matrix, type: instance.type.name,
    source: source.kind === 'builtin' ? source : { kind: 'module', name: basename(source.path), sha256: source.sha256 },
    heavy: instance.type.heavy, gather: instance.type.gather, params: instance.params, inputs,
    key: instance.key, record: instance.record, files: instance.files.map((path) => contentOf(instance, path)),
    compute: instance.type.numeric ? (instance.record.backend ?? compute) : null,
  };
}

/** Where, on the planning machine, the content the instance's task names by hash is. */
export function locatedOf(instance: KeyedInstance): Located {
  const located: Record<string, string> = {};
  const source = instance.type.source;
  if (source.kind === 'module') located[source.sha256] = source.path;
  for (const path of instance.files) {
    const { sha256 } = contentOf(instance, path);
    if (sha256 !== '') located[sha256] = path;
  }
  return located;
}

/**
 * Executes the instances a plan says must run, each as soon as what it needs
 * is ready, at most `jobs` at a time, through the runner. The runner's
 * executors publish; this coordinator records each artifact in the pipeline's
 * index as soon as it is done, so a killed run loses only the stages that were
 * running. Other runs may work on the same store: an instance is computed only
 * under the claim on its key, an instance another run is computing is waited
 * for (outside the job slots) and its artifact used, and a damaged artifact is
 * moved aside only under its claim.
 */
export async function schedule(
  plan: Plan,
  states: ReadonlyMap<string, InstanceState>,
  store: Store,
  runner: TaskRunner,
  emit: EventSink,
  options: ScheduleOptions,
): Promise<ScheduleResult> {
  const queue = new PQueue({ concurrency: options.jobs });
  const graph = new InstanceGraph(plan.instances);
  const priority = graph.priority();
  const index = new Map<string, IndexEntry>();
  for (const [id, entry] of await store.readIndex(plan.name)) index.set(id, entry);
  // Only the entries this run records are written (merged into the file), so another run's are kept.
  const updates = new Map<string, IndexEntry>();
  const counts: Record<EndStatus | 'cached', number> = { done: 0, failed: 0, interrupted: 0, skipped: 0, cached: 0 };
  const outcome = new Map<string, Promise<EndStatus | 'cached'>>();
  const byKey = new Map<string, { readonly id: string; readonly result: Promise<EndStatus> }>();
  let stopping = false;
  let indexWrite: Promise<void> = Promise.resolve();

  const remember = (instance: KeyedInstance): void => {
    const entry = { key: instance.key, record: instance.record } satisfies IndexEntry;
    index.set(instance.id, entry);
    updates.set(instance.id, entry);
    // Serialised so two completions never write the index at the same moment.
    indexWrite = indexWrite.then(() => store.writeIndex(plan.name, updates)).catch(() => undefined);
  };
  const done = (instance: KeyedInstance, durationMs: number, extra: { summary: unknown; peakRssMb?: number; worker?: string }): EndStatus => {
    counts.done++;
    emit({ event: 'stage-end', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, status: 'done', durationMs, ...(extra as object) });
    return 'done';
  };
  const fail = (instance: KeyedInstance, failure: Failure, durationMs = 0): EndStatus => {
    const status = endStatusOf(failure);
    counts[status]++;
    emit({ event: 'stage-end', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, status, durationMs, failure });
    return status;
  };

  const runOne = async (instance: KeyedInstance): Promise<EndStatus> => {
    if (stopping || options.signal.aborted) return fail(instance, { reason: 'run-stopping' });
    const started = Date.now();
    // The plan runs this instance, so whatever is at its key (damaged, or forced to recompute) is replaced.
    const existing = await store.state(instance.key);
    if (existing.state === 'damaged') emit({ event: 'warning', time: Date.now(), id: instance.id, message: `its artifact is damaged (${existing.reason}): moved aside and recomputed` });
    if (existing.state !== 'missing') await store.quarantine(instance.key);
    const task = taskOf(instance, graph, plan.backend);
    emit({ event: 'stage-start', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, where: runner.where(task) });
    try {
      const result = await runner.run(task, locatedOf(instance), {
        log: (level, message) => emit({ event: 'log', time: Date.now(), id: instance.id, level, message }),
        progress: (progress) => emit({ event: 'progress', time: Date.now(), id: instance.id, progress }),
      }, options.signal);
      remember(instance);
      return done(instance, Date.now() - started, { summary: result.summary, ...(result.peakRssMb !== undefined ? { peakRssMb: result.peakRssMb } : {}), ...(result.worker !== undefined ? { worker: result.worker } : {}) });
    } catch (error) {
      if (options.signal.aborted) return fail(instance, { reason: 'interrupted' }, Date.now() - started);
      const failure = toFailure(error);
      if (failure.reason === 'input-damaged') await quarantineClaimed(failure.key);
      // Queued tasks check `stopping` when they start, so nothing new begins after a failure.
      if (!options.keepGoing) stopping = true;
      return fail(instance, failure, Date.now() - started);
    }
  };

  /** Moves a damaged artifact aside under its claim; one claimed by another run is left to that run. */
  const quarantineClaimed = async (key: string): Promise<void> => {
    const claim = await store.claim(key, options.command);
    if (claim.kind !== 'taken') return;
    try {
      await store.quarantine(key);
    } finally {
      await claim.release();
    }
  };
  const cachedByAnother = (instance: KeyedInstance, waitedMs: number, summary: JsonValue): EndStatus => {
    counts.cached++;
    remember(instance);
    emit({ event: 'stage-end', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, status: 'cached', durationMs: waitedMs, summary });
    return 'cached';
  };

  /**
   * Inside a job slot: one attempt at the claim on an instance's key. Taken,
   * the instance runs under it, or its artifact is used if another run
   * published it since this run decided. Held by another live run, the slot is
   * given back and the holder is returned, for the caller to wait outside the slots.
   */
  const claimThenRun = async (instance: KeyedInstance): Promise<EndStatus | { readonly held: LockHolder }> => {
    if (stopping || options.signal.aborted) return fail(instance, { reason: 'run-stopping' });
    const started = Date.now();
    const claim = await store.claim(instance.key, options.command);
    if (claim.kind === 'held') return { held: claim.holder };
    try {
      const now = await store.state(instance.key);
      if (now.state === 'ok' && options.found.get(instance.key)?.state !== 'ok') {
        return cachedByAnother(instance, Date.now() - started, (await store.manifest(instance.key)).summary);
      }
      return await runOne(instance);
    } finally {
      await claim.release();
    }
  };

  /** Runs an instance under its claim, waiting (outside the job slots) while another live run holds it. */
  const claimAndRun = async (instance: KeyedInstance): Promise<EndStatus> => {
    let told: LockHolder | undefined;
    for (;;) {
      const got = await enqueue(instance);
      if (typeof got === 'string') return got;
      if (!sameHolder(told, got.held)) {
        told = got.held;
        emit({ event: 'waiting', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, holder: { pid: got.held.pid, host: got.held.host, command: got.held.command } });
      }
      // Polled, since the holder may be another machine's process; a holder that dies leaves a stale claim, taken over by the next attempt.
      while (!options.signal.aborted && !stopping && sameHolder(await store.claimHolder(instance.key), got.held)) await pause(100);
    }
  };

  // Instances that become ready together (the dependents of a stage that just finished) must all be
  // queued before the queue picks the next one, or the first to arrive would start whatever its
  // priority: when a task ends or is queued, hold the queue until the end of this turn of the event loop.
  let holding = false;
  const hold = (): void => {
    if (holding) return;
    holding = true;
    queue.pause();
    setImmediate(() => {
      holding = false;
      queue.start();
    });
  };
  const enqueue = (instance: KeyedInstance): Promise<EndStatus | { readonly held: LockHolder }> => {
    hold();
    return queue.add(async () => {
      try {
        return await claimThenRun(instance);
      } finally {
        hold();
      }
    }, { throwOnTimeout: true, priority: priority.get(instance.id) ?? 0 });
  };

  for (const instance of plan.instances) {
    const state = states.get(instance.id);
    if (state?.status !== 'run') {
      if (state?.status === 'cached') {
        counts.cached++;
        if (index.get(instance.id)?.key !== instance.key) remember(instance);
      }
      // Not selected by --only: announced as such by the `instance` event, and nothing waits on it.
      outcome.set(instance.id, Promise.resolve(state?.status === 'cached' ? 'cached' : 'skipped'));
      continue;
    }
    const deps = graph.needsOf(instance.id);
    outcome.set(instance.id, (async () => {
      const results = await Promise.all(deps.map((d) => outcome.get(d) ?? Promise.resolve<EndStatus | 'cached'>('cached')));
      const blocked = deps.find((_, i) => results[i] !== 'done' && results[i] !== 'cached');
      if (blocked !== undefined) return fail(instance, { reason: 'dependency-failed', dependency: blocked });
      if (stopping || options.signal.aborted) return fail(instance, { reason: 'run-stopping' });
      // Two instances with one key (the same type, params and inputs) are one piece of work: run it once.
      const twin = byKey.get(instance.key);
      if (twin !== undefined) {
        const status = await twin.result;
        if (status !== 'done' && status !== 'cached') return fail(instance, { reason: 'dependency-failed', dependency: twin.id });
        remember(instance);
        return done(instance, 0, { summary: (await store.manifest(instance.key)).summary });
      }
      const result = claimAndRun(instance);
      byKey.set(instance.key, { id: instance.id, result });
      return result;
    })());
  }
  await Promise.all(outcome.values());
  await indexWrite;
  const status = options.signal.aborted ? 'interrupted' : counts.failed > 0 ? 'failed' : 'success';
  return { status, counts };
}
