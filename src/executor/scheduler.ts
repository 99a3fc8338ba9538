import PQueue from 'p-queue';
import { readManifest, publishArtifact } from '../cache/artifact.js';
import type { IndexEntry, Store } from '../cache/store.js';
import type { InstanceState } from '../plan/states.js';
import type { KeyedInstance, Plan } from '../plan/types.js';
import type { LineageEntry } from '../stages/types.js';
import { rm } from 'node:fs/promises';
import type { EndStatus, EventSink } from './events.js';
import type { TaskRunner } from './runner.js';
import { toFailure, type Task } from './task.js';

/** How to execute a plan. */
export interface ScheduleOptions {
  readonly jobs: number;
  /** Finish independent branches after a failure instead of stopping. */
  readonly keepGoing: boolean;
  /** Aborted on Ctrl-C: nothing new starts and running stages are asked to stop. */
  readonly signal: AbortSignal;
}

/** The outcome of executing a plan. */
export interface ScheduleResult {
  readonly status: 'success' | 'failed' | 'interrupted';
  readonly counts: Readonly<Record<EndStatus | 'cached', number>>;
}

/**
 * Executes the instances a plan says must run, each as soon as what it needs
 * is ready, at most `jobs` at a time. Publishes each output atomically and
 * records it in the pipeline's index as soon as it is done, so a killed run
 * loses only the stages that were running.
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
  const byId = new Map(plan.instances.map((i) => [i.id, i]));
  const index = await store.readIndex(plan.name);
  const counts: Record<EndStatus | 'cached', number> = { done: 0, failed: 0, interrupted: 0, skipped: 0, cached: 0 };
  const outcome = new Map<string, Promise<EndStatus | 'cached'>>();
  const byKey = new Map<string, { readonly id: string; readonly result: Promise<EndStatus> }>();
  let stopping = false;
  let indexWrite: Promise<void> = Promise.resolve();

  const remember = (instance: KeyedInstance): void => {
    index.set(instance.id, { key: instance.key, record: instance.record } satisfies IndexEntry);
    // Serialised so two completions never write the index at the same moment.
    indexWrite = indexWrite.then(() => store.writeIndex(plan.name, index)).catch(() => undefined);
  };
  const end = (instance: KeyedInstance, status: EndStatus, durationMs: number, extra: { error?: string; hint?: string; summary?: unknown; peakRssMb?: number } = {}): EndStatus => {
    counts[status]++;
    emit({ event: 'stage-end', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, status, durationMs, ...(extra as object) });
    return status;
  };

  const runOne = async (instance: KeyedInstance): Promise<EndStatus> => {
    if (stopping || options.signal.aborted) return end(instance, 'skipped', 0, { error: 'not started: the run is stopping' });
    const started = Date.now();
    const inputs: Record<string, string[]> = {};
    const lineage: Record<string, LineageEntry> = {};
    for (const [need, ids] of Object.entries(instance.needs)) {
      inputs[need] = [];
      for (const id of ids) {
        const key = byId.get(id)?.key ?? '';
        const damaged = await store.verify(key);
        if (damaged !== null) {
          await store.remove(key);
          return end(instance, 'failed', Date.now() - started, {
            error: `input ${id} is damaged (${damaged}); it was removed`,
            hint: 'run again to recompute it',
          });
        }
        inputs[need].push(store.objectDir(key));
        if (!instance.type.gather) Object.assign(lineage, (await readManifest(store.objectDir(key))).lineage ?? {});
      }
    }
    const outDir = await store.tmpDir(instance.key);
    const task: Task = {
      id: instance.id, stage: instance.stage, key: instance.key, matrix: instance.matrix, source: instance.type.source,
      heavy: instance.type.heavy, params: instance.params, inputs, outDir, files: instance.files,
    };
    emit({ event: 'stage-start', time: Date.now(), id: instance.id, stage: instance.stage, key: instance.key, where: runner.where(task) });
    try {
      const { summary, peakRssMb } = await runner.run(task, {
        log: (level, message) => emit({ event: 'log', time: Date.now(), id: instance.id, level, message }),
        progress: (progress) => emit({ event: 'progress', time: Date.now(), id: instance.id, progress }),
      }, options.signal);
      if (options.signal.aborted) throw new Error('interrupted');
      lineage[instance.stage] = { type: instance.type.name, matrix: instance.matrix, summary };
      await publishArtifact(outDir, store.objectDir(instance.key), {
        key: instance.key, stage: instance.stage, type: instance.type.name, matrix: instance.matrix, record: instance.record,
        summary, lineage, createdAt: new Date().toISOString(), durationMs: Date.now() - started,
      });
      remember(instance);
      return end(instance, 'done', Date.now() - started, { summary, ...(peakRssMb !== undefined ? { peakRssMb } : {}) });
    } catch (error) {
      await rm(outDir, { recursive: true, force: true });
      if (options.signal.aborted) return end(instance, 'interrupted', Date.now() - started, { error: 'interrupted' });
      const failure = toFailure(error);
      // Queued tasks check `stopping` when they start, so nothing new begins after a failure.
      if (!options.keepGoing) stopping = true;
      return end(instance, 'failed', Date.now() - started, {
        error: failure.message,
        ...(failure.hint !== undefined ? { hint: failure.hint } : {}),
        ...(failure.user || failure.stack === undefined ? {} : { stack: failure.stack }),
      });
    }
  };

  // Which ready instance runs first: one that completes a cell (only gathering stages, or none, need
  // it) so results arrive during a long grid; then the one with the longest chain of stages after it,
  // so work that gates much else (k-means before the trainings it feeds) starts early and a long
  // independent branch (training on all labels) is not left to run alone at the end.
  const dependents = new Map<string, KeyedInstance[]>();
  for (const instance of plan.instances) {
    for (const id of Object.values(instance.needs).flat()) {
      const list = dependents.get(id);
      if (list === undefined) dependents.set(id, [instance]);
      else list.push(instance);
    }
  }
  const chain = new Map<string, number>();
  const priority = new Map<string, number>();
  // Instances are in dependency order, so walking them backwards meets every dependent first.
  for (const instance of [...plan.instances].reverse()) {
    const after = dependents.get(instance.id) ?? [];
    chain.set(instance.id, 1 + Math.max(0, ...after.map((d) => chain.get(d.id) ?? 0)));
    priority.set(instance.id, after.every((d) => d.type.gather === true) ? Number.MAX_SAFE_INTEGER : (chain.get(instance.id) ?? 0));
  }

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
  const enqueue = (instance: KeyedInstance): Promise<EndStatus> => {
    hold();
    return queue.add(async () => {
      try {
        return await runOne(instance);
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
      outcome.set(instance.id, Promise.resolve(state?.status === 'cached' ? 'cached' : 'skipped'));
      continue;
    }
    const deps = Object.values(instance.needs).flat();
    outcome.set(instance.id, (async () => {
      const results = await Promise.all(deps.map((d) => outcome.get(d) ?? Promise.resolve<EndStatus | 'cached'>('cached')));
      const blocked = deps.find((_, i) => results[i] !== 'done' && results[i] !== 'cached');
      if (blocked !== undefined) return end(instance, 'skipped', 0, { error: `not run: ${blocked} did not complete` });
      if (stopping || options.signal.aborted) return end(instance, 'skipped', 0, { error: 'not started: the run is stopping' });
      // Two instances with one key (the same type, params and inputs) are one piece of work: run it once.
      const twin = byKey.get(instance.key);
      if (twin !== undefined) {
        const status = await twin.result;
        if (status !== 'done') return end(instance, 'skipped', 0, { error: `not run: ${twin.id}, the same work, did not complete` });
        remember(instance);
        return end(instance, 'done', 0, { summary: (await readManifest(store.objectDir(instance.key))).summary });
      }
      const result = enqueue(instance);
      byKey.set(instance.key, { id: instance.id, result });
      return result;
    })());
  }
  await Promise.all(outcome.values());
  await indexWrite;
  const status = options.signal.aborted ? 'interrupted' : counts.failed > 0 ? 'failed' : 'success';
  return { status, counts };
}
