import { dirname, resolve } from 'node:path';
import { loadPipeline } from '../config/load.js';
import { applySets } from '../config/overrides.js';
import { applyReplicatesOverride } from '../config/replicates.js';
import type { LoadedPipeline } from '../config/spec.js';
import { DiagnosticError, tidy, type Diagnostic } from '../errors/diagnostic.js';
import { detectCompute } from '../ml/backend.js';
import { assignKeys, expand } from '../plan/planner.js';
import type { Expansion, Plan } from '../plan/types.js';
import type { Store } from '../cache/store.js';
import { loadStageTypes } from '../stages/registry.js';
import { StageUserError } from '../stages/types.js';

/** What loading and planning a pipeline needs from the command line. */
export interface PrepareOptions {
  readonly file: string;
  readonly sets: readonly string[];
  /** The store, for the cache of external files' hashes; validation alone passes none. */
  readonly store?: Store;
  /** `run` may download missing data; `plan` and `gc` may not. */
  readonly allowDownload: boolean;
  readonly log: (level: 'info' | 'warn', message: string) => void;
  /**
   * What numeric stages will compute on where they execute (the runner's answer), written into
   * their keys; by default this machine's, as `plan` shows it.
   */
  readonly compute?: () => string;
  /** Folders local stage modules may also be loaded from, besides the pipeline's folder tree. */
  readonly moduleRoots?: readonly string[];
}

/**
 * Loads, checks and expands a pipeline: every problem found in the file,
 * its stage types and the `--set` overrides is reported together as one
 * DiagnosticError. No TensorFlow, no stage code beyond the schemas.
 */
export async function checkPipeline(file: string, sets: readonly string[], moduleRoots: readonly string[] = []): Promise<{ pipeline: LoadedPipeline; expansion: Expansion; code: Awaited<ReturnType<typeof loadStageTypes>>['code'] }> {
  const replicated = applyReplicatesOverride(await loadPipeline(file), sets);
  const loaded = replicated.pipeline;
  const { types, code, diagnostics } = await loadStageTypes(loaded, moduleRoots);
  const overrides = applySets(loaded, replicated.sets);
  const pipeline: LoadedPipeline = { ...loaded, spec: { ...loaded.spec, matrix: overrides.matrix } };
  const expanded = expand(pipeline, types, overrides.params);
  const all = tidy([...replicated.diagnostics, ...overrides.diagnostics, ...diagnostics, ...expanded.diagnostics]);
  if (all.length > 0 || expanded.expansion === undefined) throw new DiagnosticError(all);
  return { pipeline, expansion: expanded.expansion, code };
}

/**
 * Plans a pipeline: checks it, asks stages that read external files where
 * those are (hashing them for the keys), and assigns every instance its key.
 */
export async function preparePlan(options: PrepareOptions): Promise<{ pipeline: LoadedPipeline; plan: Plan }> {
  const { pipeline, expansion, code } = await checkPipeline(options.file, options.sets, options.moduleRoots);
  const files = new Map<string, { readonly paths: readonly string[]; readonly hashes: Readonly<Record<string, string>> }>();
  const problems: Diagnostic[] = [];
  for (const instance of expansion.instances) {
    const hook = code.get(pipeline.spec.stages[instance.stage]?.uses ?? '')?.files;
    if (hook === undefined) continue;
    try {
      const paths = await hook(instance.params as never, { allowDownload: options.allowDownload, baseDir: dirname(resolve(options.file)), log: options.log });
      files.set(instance.id, { paths, hashes: options.store ? await options.store.hashFiles(paths) : {} });
    } catch (error) {
      if (!(error instanceof StageUserError)) throw error;
      problems.push(pipeline.source.atPath(['stages', instance.stage, 'uses'], `stage "${instance.stage}": ${error.message}`, error.hint));
    }
  }
  if (problems.length > 0) throw new DiagnosticError(tidy(problems));
  const needsBackend = expansion.instances.some((i) => i.type.numeric);
  return { pipeline, plan: assignKeys(expansion, { backend: needsBackend ? (options.compute ?? detectCompute)() : 'none', files }) };
}
