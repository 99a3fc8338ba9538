import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LoadedPipeline } from '../config/spec.js';
import { schemaProblem } from '../config/validate-schema.js';
import { suggest, type Diagnostic } from '../errors/diagnostic.js';
import { STAGE_ROLES, type StageSource, type StageTypeInfo } from '../plan/types.js';
import type { StageType } from './types.js';

/**
 * The built-in stage types. Each loads lazily and none imports TensorFlow at
 * its top level, so listing or validating them stays cheap.
 */
const BUILTINS = {
  dataset: () => import('./dataset.js'),
  split: () => import('./split.js'),
  features: () => import('./features.js'),
  kmeans: () => import('./kmeans.js'),
  'knn-graph': () => import('./knn-graph.js'),
  'seed-labels': () => import('./seed-labels.js'),
  propagate: () => import('./propagate.js'),
  train: () => import('./train.js'),
  'active-learning': () => import('./active-learning.js'),
  evaluate: () => import('./evaluate.js'),
  aggregate: () => import('./aggregate.js'),
} as const satisfies Record<string, () => Promise<{ stage: StageType<never> }>>;

/** The names of the built-in stage types. */
export const BUILTIN_NAMES = Object.keys(BUILTINS) as readonly (keyof typeof BUILTINS)[];

/** True when `uses` names a local module rather than a built-in type. */
export function isModulePath(uses: string): boolean {
  return uses.startsWith('./') || uses.startsWith('../') || uses.startsWith('/');
}

/** Loads a stage type's code (in the main process or a worker). */
export async function loadStage(source: StageSource): Promise<StageType> {
  if (source.kind === 'builtin') {
    const load = BUILTINS[source.name as keyof typeof BUILTINS];
    if (load === undefined) throw new Error(`unknown built-in stage type "${source.name}"`);
    return (await load()).stage as unknown as StageType;
  }
  const module = (await import(pathToFileURL(source.path).href)) as Record<string, unknown>;
  return (module['stage'] ?? module['default']) as StageType;
}

function isRequirement(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Record<string, unknown>;
  const when = r['when'];
  return Array.isArray(r['types']) && r['types'].length > 0 && r['types'].every((t) => typeof t === 'string')
    && typeof r['why'] === 'string'
    && (when === undefined || (when !== null && typeof when === 'object' && Object.values(when).every((v) => Array.isArray(v))));
}

/** What is wrong with a module's export, or null when it is a stage type. */
function stageShapeProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object') return 'it exports no "stage" object';
  const s = value as Record<string, unknown>;
  if (typeof s['name'] !== 'string' || s['name'] === '') return 'its stage has no "name" string';
  if (typeof s['version'] !== 'string' && typeof s['version'] !== 'number') return 'its stage has no "version" (string or number)';
  if (s['schema'] === null || typeof s['schema'] !== 'object') return 'its stage has no "schema" object';
  if (typeof s['run'] !== 'function') return 'its stage has no "run" function';
  if (s['role'] !== undefined && !(STAGE_ROLES as readonly unknown[]).includes(s['role'])) return `its stage's "role" must be one of ${STAGE_ROLES.join(', ')}`;
  if (s['requires'] !== undefined && !(Array.isArray(s['requires']) && s['requires'].every(isRequirement))) {
    return 'its stage\'s "requires" must be a list of { types: [stage type names], why: text, when?: { param: [values] } }';
  }
  const rounds = s['roundParams'];
  const names = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.every((n) => typeof n === 'string'));
  if (rounds !== undefined && (rounds === null || typeof rounds !== 'object' || !names((rounds as Record<string, unknown>)['firstIgnores']) || !names((rounds as Record<string, unknown>)['perRound']))) {
    return 'its stage\'s "roundParams" must be { firstIgnores?: [parameter names], perRound?: [parameter names] }';
  }
  const problem = schemaProblem(s['schema'] as object);
  return problem === null ? null : `its stage's schema is not a valid JSON Schema (${problem})`;
}

function info(stage: StageType, source: StageSource): StageTypeInfo {
  return {
    name: stage.name,
    version: stage.version,
    schema: stage.schema,
    gather: stage.gather === true,
    heavy: stage.heavy === true,
    numeric: stage.numeric === true,
    role: stage.role ?? null,
    readsFiles: typeof stage.files === 'function',
    untracked: stage.untracked ?? [],
    requires: stage.requires ?? [],
    ...(stage.roundParams !== undefined ? { roundParams: stage.roundParams } : {}),
    source,
  };
}

/**
 * Where a local module may be loaded from: a regular file (a device or FIFO
 * would hang the import) whose real path lies inside one of `roots` (the
 * pipeline's folder tree, plus folders the user allowed), so that checking a
 * pipeline never runs code from elsewhere.
 */
function findModule(path: string, roots: readonly string[]): { path: string } | { problem: string; hint: string } {
  let real: string;
  try {
    real = realpathSync(path);
    const stat = statSync(real);
    if (!stat.isFile()) return { problem: 'is not a regular file', hint: `${path} must be a JavaScript module file` };
  } catch {
    return { problem: 'not found', hint: `looked for ${path}; paths are relative to the pipeline file` };
  }
  if (!roots.some((root) => real === root || real.startsWith(root.endsWith(sep) ? root : `${root}${sep}`))) {
    return {
      problem: 'is outside the pipeline\'s folder',
      hint: `${real} would run code from outside ${roots[0] ?? 'the pipeline\'s folder'}; to allow it, pass --allow-modules ${dirname(real)} (or list the folder in SEEDFLOW_MODULE_PATH)`,
    };
  }
  return { path: real };
}

/**
 * Loads the stage types a pipeline uses, keyed by `uses`, reporting unknown
 * types and unusable local modules as diagnostics at their `uses:` line.
 */
export async function loadStageTypes(pipeline: LoadedPipeline, moduleRoots: readonly string[] = []): Promise<{ types: Map<string, StageTypeInfo>; code: Map<string, StageType>; diagnostics: Diagnostic[] }> {
  const types = new Map<string, StageTypeInfo>();
  const code = new Map<string, StageType>();
  const diagnostics: Diagnostic[] = [];
  const base = dirname(resolve(pipeline.source.file));
  const roots = [base, ...moduleRoots].flatMap((root) => {
    try {
      return [realpathSync(resolve(root))];
    } catch {
      return [];
    }
  });
  for (const [id, spec] of Object.entries(pipeline.spec.stages)) {
    if (types.has(spec.uses)) continue;
    const at = (message: string, hint?: string): void => {
      diagnostics.push(pipeline.source.atPath(['stages', id, 'uses'], message, hint));
    };
    if (isModulePath(spec.uses)) {
      const found = findModule(resolve(base, spec.uses), roots);
      if ('problem' in found) {
        at(`stage "${id}": local stage module "${spec.uses}" ${found.problem}`, found.hint);
        continue;
      }
      const path = found.path;
      let source: StageSource;
      let stage: unknown;
      try {
        source = { kind: 'module', path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
        stage = await loadStage(source);
      } catch (error) {
        at(`stage "${id}": cannot load module "${spec.uses}": ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
        continue;
      }
      const problem = stageShapeProblem(stage);
      if (problem !== null) {
        at(`stage "${id}": module "${spec.uses}" does not export a stage: ${problem}`, 'export const stage = { name, version, schema, run(inputs, params, context) }');
        continue;
      }
      types.set(spec.uses, info(stage as StageType, source));
      code.set(spec.uses, stage as StageType);
    } else if ((BUILTIN_NAMES as readonly string[]).includes(spec.uses)) {
      const source: StageSource = { kind: 'builtin', name: spec.uses };
      const stage = await loadStage(source);
      types.set(spec.uses, info(stage, source));
      code.set(spec.uses, stage);
    } else {
      at(`stage "${id}": unknown stage type "${spec.uses}"`, suggest(spec.uses, BUILTIN_NAMES) ?? 'use a built-in type or a local module path starting with ./');
    }
  }
  return { types, code, diagnostics };
}
