import { keyOf, KEY_FORMAT, type KeyRecord } from '../cache/key.js';
import { isProblem, parseTemplate, type Reference } from '../config/expressions.js';
import type { DocPath, SourceFile } from '../config/source.js';
import type { LoadedPipeline } from '../config/spec.js';
import { MAX_ROUNDS } from '../config/pipeline-schema.js';
import { validateWithSchema } from '../config/validate-schema.js';
import { suggest, tidy, type Diagnostic } from '../errors/diagnostic.js';
import { dict, hasOwn, own } from '../util/dict.js';
import { canonicalJson, isPlainObject, type JsonObject, type JsonValue } from '../util/json.js';
import { topoSort } from './graph.js';
import { expandMatrix, formatMatrix, project, type Combination } from './matrix.js';
import type { Expansion, InputRequirement, KeyedInstance, Plan, StageInstance, StageTypeInfo } from './types.js';

/** A reference found in a stage's `with`, with where it was written. */
interface FoundReference {
  readonly ref: Reference;
  readonly path: DocPath;
}

function collectReferences(value: JsonValue, path: DocPath, source: SourceFile, out: FoundReference[], problems: Diagnostic[]): void {
  if (typeof value === 'string') {
    const template = parseTemplate(value);
    if (isProblem(template)) problems.push(source.atText(path, template.text, template.message, template.hint));
    else for (const part of template) if (typeof part !== 'string') out.push({ ref: part, path });
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => collectReferences(item, [...path, i], source, out, problems));
  } else if (isPlainObject(value)) {
    for (const [k, v] of Object.entries(value)) collectReferences(v as JsonValue, [...path, k], source, out, problems);
  }
}

function readFields(value: JsonValue | undefined, fields: readonly string[]): JsonValue | undefined {
  let current = value;
  for (const field of fields) {
    if (!isPlainObject(current)) return undefined;
    current = own(current as JsonObject, field);
  }
  return current;
}

/** What expressions read: the instance's matrix values, the params, and the params swept as axes. */
interface Scopes {
  readonly matrix: Combination;
  readonly params: Readonly<Record<string, JsonValue>>;
  readonly swept: readonly string[];
}

/** A reference reads the matrix when it names an axis, or a param that `--set` sweeps (an axis of the same name). */
function readsMatrix(ref: Reference, swept: readonly string[]): boolean {
  return ref.scope === 'matrix' || swept.includes(ref.name);
}

/** Substitutes expressions; a reference to a missing field drops the key, so the stage's default applies. */
function resolveValue(value: JsonValue, scopes: Scopes): JsonValue | undefined {
  if (typeof value === 'string') {
    const template = parseTemplate(value);
    if (isProblem(template)) return value;
    const lookup = (ref: Reference): JsonValue | undefined => (ref.scope === 'replicate'
      ? own(scopes.matrix, REPLICATE_AXIS)
      : readFields(own(readsMatrix(ref, scopes.swept) ? scopes.matrix : scopes.params, ref.name), ref.fields));
    const only = template[0];
    if (template.length === 1 && only !== undefined && typeof only !== 'string') return lookup(only);
    return template.map((part) => {
      if (typeof part === 'string') return part;
      const v = lookup(part);
      return v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
    }).join('');
  }
  if (Array.isArray(value)) return value.map((item) => resolveValue(item, scopes) ?? null);
  if (isPlainObject(value)) {
    const out = dict<JsonValue>();
    for (const [k, v] of Object.entries(value)) {
      const resolved = resolveValue(v as JsonValue, scopes);
      if (resolved !== undefined) out[k] = resolved;
    }
    return out;
  }
  return value;
}

/**
 * The diagnostics of one stage's instances, one per mistake: a mistake made
 * once in the file but found in several matrix instances is reported once,
 * with the instances it affects, not once per instance.
 */
class ProblemsByInstance {
  /** The matrix values of every instance of the stage, in order. */
  readonly instances: string[] = [];
  private readonly found = new Map<string, { diagnostic: Diagnostic; instances: string[] }>();

  add(diagnostics: readonly Diagnostic[], instance: string): void {
    for (const diagnostic of diagnostics) {
      const id = `${diagnostic.line}:${diagnostic.column}:${diagnostic.message}`;
      const entry = this.found.get(id) ?? { diagnostic, instances: [] };
      entry.instances.push(instance);
      this.found.set(id, entry);
    }
  }

  diagnostics(): Diagnostic[] {
    const total = this.instances.length;
    return [...this.found.values()].map(({ diagnostic, instances }) => {
      if (instances.every((i) => i === '')) return diagnostic;
      const affects = total === 1
        ? `in ${instances[0] ?? ''}`
        : instances.length === total
        ? `in all ${total} instances`
        : `in ${instances.length} of ${total} instances: ${instances.slice(0, 3).join('; ')}${instances.length > 3 ? `; and ${instances.length - 3} more` : ''}`;
      return { ...diagnostic, message: `${diagnostic.message} (${affects})` };
    });
  }
}

function matches(when: InputRequirement['when'], params: Readonly<Record<string, JsonValue>>): boolean {
  return Object.entries(when ?? {}).every(([name, values]) => values.some((v) => canonicalJson(v) === canonicalJson(params[name] ?? null)));
}

/**
 * The inputs a stage type declares it cannot run without that the stage's
 * `needs` do not provide, as diagnostics at the stage's `needs` (or its id
 * when it has none), each naming the stages that could fill the gap.
 */
function missingInputs(
  id: string,
  hasNeeds: boolean,
  type: StageTypeInfo,
  params: Readonly<Record<string, JsonValue>>,
  needTypes: readonly { need: string; type: string | undefined }[],
  spec: LoadedPipeline['spec'],
  types: ReadonlyMap<string, StageTypeInfo>,
  source: SourceFile,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at: DocPath = hasNeeds ? ['stages', id, 'needs'] : ['stages', id];
  for (const requirement of type.requires) {
    if (!matches(requirement.when, params)) continue;
    const providing = needTypes.filter((n) => n.type !== undefined && requirement.types.includes(n.type));
    const what = requirement.types.map((t) => `"${t}"`).join(' or ');
    if (providing.length === 0) {
      const candidates = Object.keys(spec.stages).filter((s) => s !== id && requirement.types.includes(types.get(spec.stages[s]?.uses ?? '')?.name ?? ''));
      const hint = candidates.length > 0
        ? `add ${candidates.map((c) => `"${c}"`).join(' or ')} to its needs`
        : `add a stage of type ${what} and list it in this stage's needs`;
      out.push(source.atPath(at, `stage "${id}" needs a ${what} stage: ${requirement.why}`, hint, hasNeeds ? 'value' : 'key'));
    } else if (requirement.types.length === 1 && providing.length > 1) {
      out.push(source.atPath(at, `stage "${id}" needs exactly one ${what} stage, got ${providing.map((p) => `"${p.need}"`).join(', ')}: ${requirement.why}`, 'keep one of them in its needs'));
    }
  }
  return out;
}

/** The axis a stage with `rounds:` (and what it feeds) is expanded over; its value is the round, from 1. */
export const ROUND_AXIS = 'round';

/** Whether an instance's matrix values place it in a round: of a repeating stage, or of a stage it feeds. */
export function inRound(matrix: Readonly<Record<string, JsonValue>>): boolean {
  return typeof own(matrix, ROUND_AXIS) === 'number';
}

/**
 * The number of rounds of each stage that declares `rounds:`, read from a
 * count or from a param (never a matrix axis or a swept param: a round's key
 * depends on the rounds before it, not on how many follow, so varying the
 * count across the matrix would only plan the same rounds twice).
 */
function readRounds(spec: LoadedPipeline['spec'], source: SourceFile, params: Readonly<Record<string, JsonValue>>, swept: readonly string[], diagnostics: Diagnostic[]): Record<string, number> {
  const rounds = dict<number>();
  for (const [id, stage] of Object.entries(spec.stages)) {
    const raw = stage.rounds;
    if (raw === undefined) continue;
    const at: DocPath = ['stages', id, 'rounds'];
    let value: JsonValue | undefined = raw;
    let what = 'rounds';
    if (typeof raw === 'string') {
      const template = parseTemplate(raw);
      const ref = !isProblem(template) && template.length === 1 ? template[0] : undefined;
      if (ref === undefined || typeof ref === 'string' || ref.scope !== 'params' || ref.fields.length > 0) {
        diagnostics.push(source.atPath(at, `rounds must be a count or "\${{ params.NAME }}", got "${raw}"`, 'the number of rounds is the same in every instance of a stage; read it from a param to change it with --set', 'value'));
        continue;
      }
      if (swept.includes(ref.name)) {
        diagnostics.push(source.atPath(at, `rounds reads param "${ref.name}", which --set sweeps over several values`, 'give one count: raising it later reuses the rounds already run, so a sweep of counts is its largest value', 'value'));
        continue;
      }
      if (!hasOwn(params, ref.name)) {
        diagnostics.push(source.atPath(at, `${ref.text} refers to undefined param "${ref.name}"`, suggest(ref.name, Object.keys(params)) ?? 'declare it under "params:"', 'value'));
        continue;
      }
      value = own(params, ref.name);
      what = `rounds (param "${ref.name}")`;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_ROUNDS) {
      diagnostics.push(source.atPath(at, `${what} must be a whole number from 1 to ${MAX_ROUNDS}, got ${JSON.stringify(value)}`, undefined, 'value'));
      continue;
    }
    rounds[id] = value;
  }
  return rounds;
}

/** The axis replicates expand stages over; its value is the replicate's seed. */
export const REPLICATE_AXIS = 'replicate';

/** Every matrix combination once per replicate seed (the combinations themselves without replicates). */
function withReplicates(combos: readonly Combination[], seeds: readonly number[] | undefined): Combination[] {
  if (seeds === undefined) return [...combos];
  const base = combos.length > 0 ? combos : [{}];
  return base.flatMap((combo) => seeds.map((seed) => ({ ...combo, [REPLICATE_AXIS]: seed })));
}

/** The instance id people see: the stage id, plus its matrix values when it has any. */
export function instanceId(stage: string, matrix: Combination): string {
  return Object.keys(matrix).length === 0 ? stage : `${stage}[${formatMatrix(matrix)}]`;
}

/** The most stage instances a pipeline may expand to: many times the largest grid here, and planned in seconds. */
export const MAX_INSTANCES = 50_000;

/**
 * Expands a pipeline into stage instances. Pure: the pipeline text, the
 * stage types' metadata and the effective params in, instances or located
 * diagnostics out.
 *
 * A stage is expanded over exactly the matrix axes it references in `with`
 * plus those of the stages it needs, so a stage that reads only
 * `matrix.k` runs once per K and is shared by every other axis.
 */
export function expand(
  pipeline: LoadedPipeline,
  types: ReadonlyMap<string, StageTypeInfo>,
  params: Readonly<Record<string, JsonValue>>,
): { expansion?: Expansion; diagnostics: Diagnostic[] } {
  const { spec, source } = pipeline;
  const diagnostics: Diagnostic[] = [];
  const ids = Object.keys(spec.stages);

  // Needs that name no stage.
  for (const id of ids) {
    (spec.stages[id]?.needs ?? []).forEach((need, i) => {
      if (need === id) diagnostics.push(source.atPath(['stages', id, 'needs', i], `stage "${id}" needs itself`));
      else if (!hasOwn(spec.stages, need)) {
        diagnostics.push(source.atPath(['stages', id, 'needs', i], `stage "${id}" needs unknown stage "${need}"`, suggest(need, ids.filter((s) => s !== id))));
      }
    });
  }
  const { order, cycles } = topoSort(ids, (id) => (spec.stages[id]?.needs ?? []).filter((n) => n !== id));
  for (const cycle of cycles) {
    const first = cycle[0] ?? '';
    const next = cycle[1] ?? first;
    const index = spec.stages[first]?.needs.indexOf(next) ?? -1;
    diagnostics.push(source.atPath(['stages', first, 'needs', index], `dependency cycle: ${[...cycle, first].map((s) => `"${s}"`).join(' → ')}`, `a stage cannot consume its own output, directly or through others; break the cycle by removing one of these needs`));
  }

  const { combos: matrixCombos, diagnostics: matrixProblems } = expandMatrix(spec.matrix, source);
  diagnostics.push(...matrixProblems);
  const swept = spec.matrix.sweptParams ?? [];
  const axisNames = [...new Set([...Object.keys(spec.matrix.axes), ...spec.matrix.include.flatMap((e) => Object.keys(e))])];
  if (spec.replicates !== undefined && axisNames.includes(REPLICATE_AXIS)) {
    diagnostics.push(source.atPath(spec.matrix.axes[REPLICATE_AXIS] !== undefined ? ['matrix', REPLICATE_AXIS] : ['matrix'], `matrix axis "${REPLICATE_AXIS}" clashes with the replicates' axis`, 'rename the axis: "replicates:" expands stages over an axis of that name'));
  }
  const combos = withReplicates(matrixCombos, spec.replicates);
  const roundsOf = readRounds(spec, source, params, swept, diagnostics);
  // Reserved even without rounds: results and the report read an axis of that name as rounds.
  if (axisNames.includes(ROUND_AXIS)) {
    diagnostics.push(source.atPath(spec.matrix.axes[ROUND_AXIS] !== undefined ? ['matrix', ROUND_AXIS] : ['matrix'], `matrix axis "${ROUND_AXIS}" clashes with the rounds' axis`, 'rename the axis: "rounds:" expands stages over an axis of that name, and results read it as rounds', 'key'));
  }

  // References in `with`: malformed, or naming axes, fields or params that do not exist.
  const references = new Map<string, FoundReference[]>();
  // Stages whose expressions are wrong are not checked against their schema: the value errors would only repeat the problem.
  const badExpressions = new Set<string>();
  for (const id of ids) {
    const before = diagnostics.length;
    const found: FoundReference[] = [];
    collectReferences(spec.stages[id]?.with ?? {}, ['stages', id, 'with'], source, found, diagnostics);
    references.set(id, found);
    for (const { ref, path } of found) {
      if (ref.scope === 'replicate') {
        if (spec.replicates === undefined) diagnostics.push(source.atText(path, ref.text, `${ref.text} is used but the pipeline declares no replicates`, 'add "replicates: N" next to "matrix:"'));
        else if (ref.name !== 'seed' || ref.fields.length > 0) diagnostics.push(source.atText(path, ref.text, `${ref.text}: a replicate has only a seed`, 'write ${{ replicate.seed }}'));
        continue;
      }
      const names = ref.scope === 'matrix' ? axisNames : Object.keys(params);
      if (!names.includes(ref.name)) {
        const what = ref.scope === 'matrix' ? 'matrix axis' : 'param';
        const hint = suggest(ref.name, names) ?? (ref.scope === 'matrix' ? 'declare the axis under "matrix:"' : 'declare it under "params:"');
        diagnostics.push(source.atText(path, ref.text, `${ref.text} refers to undefined ${what} "${ref.name}"`, hint));
      } else if (ref.fields.length > 0) {
        const values = ref.scope === 'matrix' ? combos.map((c) => own(c, ref.name)) : [own(params, ref.name)];
        if (!values.some((v) => readFields(v, ref.fields) !== undefined)) {
          diagnostics.push(source.atText(path, ref.text, `${ref.text}: no value of ${ref.scope} "${ref.name}" has a field "${ref.fields.join('.')}"`));
        }
      }
    }
    if (diagnostics.length > before) badExpressions.add(id);
  }

  // Problems so far make some stages impossible to expand; the others are still checked, so every problem shows at once.
  const broken = diagnostics.length > 0;

  // Axes per stage, dependencies first; a stage fed by rounds has as many rounds as the stage that repeats.
  const axes = dict<string[]>();
  const roundCount = dict<number>();
  for (const id of order) {
    const stage = spec.stages[id];
    const type = types.get(stage?.uses ?? '');
    if (stage === undefined || type === undefined) continue;
    const set = new Set((references.get(id) ?? []).filter((f) => f.ref.scope === 'replicate' || readsMatrix(f.ref, swept)).map((f) => (f.ref.scope === 'replicate' ? REPLICATE_AXIS : f.ref.name)));
    if (!type.gather) for (const need of stage.needs) for (const a of axes[need] ?? []) set.add(a);
    const fed = type.gather ? [] : stage.needs.filter((need) => roundCount[need] !== undefined);
    const repeats = roundsOf[id];
    if (repeats !== undefined) {
      if (fed.length > 0) diagnostics.push(source.atPath(['stages', id, 'rounds'], `stage "${id}" repeats in rounds but needs ${fed.map((f) => `"${f}"`).join(', ')}, which already ${fed.length > 1 ? 'repeat' : 'repeats'} in rounds`, 'rounds do not nest: give rounds to one stage of a chain', 'key'));
      roundCount[id] = repeats;
      set.add(ROUND_AXIS);
    } else if (fed.length > 0) {
      const counts = new Set(fed.map((f) => roundCount[f]));
      if (counts.size > 1) diagnostics.push(source.atPath(['stages', id, 'needs'], `stage "${id}" needs stages that repeat over different numbers of rounds (${fed.map((f) => `"${f}": ${roundCount[f]}`).join(', ')})`, 'a stage pairs its needs round by round: give them the same rounds, or gather them with an aggregate stage', 'value'));
      roundCount[id] = Math.min(...fed.map((f) => roundCount[f] ?? 0));
    }
    axes[id] = [...set].sort();
  }

  const instances: StageInstance[] = [];
  const byStage = new Map<string, StageInstance[]>();
  // Stages over the same axes have the same instances' matrices: each set of axes is projected once.
  const projections = new Map<string, Combination[]>();
  const projectOnce = (stageAxes: ReadonlySet<string>): Combination[] => {
    const name = [...stageAxes].join('\u0000');
    let found = projections.get(name);
    if (found === undefined) {
      const seen = new Set<string>();
      found = [];
      for (const combo of combos.length > 0 ? combos : [{}]) {
        const matrix = project(combo, stageAxes);
        const identity = canonicalJson(matrix);
        if (!seen.has(identity)) {
          seen.add(identity);
          found.push(matrix);
        }
      }
      projections.set(name, found);
    }
    return found;
  };
  let planned = 0;
  for (const id of order) {
    const stage = spec.stages[id];
    const type = types.get(stage?.uses ?? '');
    if (stage === undefined || type === undefined || badExpressions.has(id)) continue;
    const stageAxes = new Set(axes[id] ?? []);
    const rounds = stageAxes.delete(ROUND_AXIS) ? roundCount[id] ?? 1 : 0;
    const matrices: Combination[] = rounds === 0 ? projectOnce(stageAxes) : projectOnce(stageAxes).flatMap((m) => Array.from({ length: rounds }, (_, r): Combination => ({ ...m, [ROUND_AXIS]: r + 1 })));
    if (rounds > 0) stageAxes.add(ROUND_AXIS);
    planned += matrices.length;
    if (planned > MAX_INSTANCES) {
      diagnostics.push(source.atPath(['stages', id], `stage "${id}" brings the pipeline to ${planned.toLocaleString('en-US')} instances (${matrices.length.toLocaleString('en-US')} of its own, over ${[...stageAxes].join(', ') || 'no axes'}), more than the limit of ${MAX_INSTANCES.toLocaleString('en-US')}`, 'make fewer stages depend on the largest axes, or split the experiment into several pipelines', 'key'));
      break;
    }
    const list: StageInstance[] = [];
    const problems = new ProblemsByInstance();
    const needTypes = stage.needs.map((need) => ({ need, type: types.get(spec.stages[need]?.uses ?? '')?.name }));
    for (const matrix of matrices) {
      const iid = instanceId(id, matrix);
      problems.instances.push(formatMatrix(matrix));
      const resolved = (resolveValue(stage.with, { matrix, params, swept }) ?? dict()) as Record<string, JsonValue>;
      const withProblems = validateWithSchema(type.schema, resolved, { source, base: ['stages', id, 'with'], label: `stage "${id}": ` });
      if (withProblems.length === 0) withProblems.push(...missingInputs(id, stage.needs.length > 0, type, resolved, needTypes, spec, types, source));
      if (withProblems.length > 0 || broken) {
        problems.add(withProblems, formatMatrix(matrix));
        continue;
      }
      const needs = dict<string[]>();
      for (const need of stage.needs) {
        const candidates = byStage.get(need) ?? [];
        needs[need] = candidates
          .filter((c) => Object.entries(c.matrix).every(([axis, value]) => !hasOwn(matrix, axis) || canonicalJson(matrix[axis]) === canonicalJson(value)))
          .map((c) => c.id);
      }
      // Round r of a repeating stage reads round r - 1 of the same cell, under the stage's own id.
      const round = own(matrix, ROUND_AXIS);
      if (roundsOf[id] !== undefined && typeof round === 'number' && round > 1) needs[id] = [instanceId(id, { ...matrix, [ROUND_AXIS]: round - 1 })];
      list.push({ id: iid, stage: id, type, matrix, params: roundsOf[id] === undefined ? resolved : paramsOfRound(type, resolved, round), needs });
    }
    diagnostics.push(...problems.diagnostics());
    byStage.set(id, list);
    instances.push(...list);
  }
  if (diagnostics.length > 0) return { diagnostics: tidy(diagnostics) };
  return { expansion: { name: spec.name, params, stages: order, axes, rounds: roundsOf, instances }, diagnostics: [] };
}

/**
 * The parameters round `round` of a repeating stage reads, as its type's
 * `roundParams` says: round 1 without `firstIgnores`, round r ≥ 2 with entry
 * r − 2 of each `perRound` list (the last repeating). Both the key and the
 * run get these, so a round's key holds only what it reads: extending a list
 * of batches keeps the rounds before the change cached.
 */
export function paramsOfRound(type: StageTypeInfo, params: JsonObject, round: JsonValue | undefined): JsonObject {
  const spec = type.roundParams;
  if (spec === undefined || typeof round !== 'number') return params;
  const out = dict<JsonValue>();
  for (const [name, value] of Object.entries(params)) {
    if (round === 1 && spec.firstIgnores?.includes(name) === true) continue;
    out[name] = round > 1 && spec.perRound?.includes(name) === true && Array.isArray(value) ? value[Math.min(round - 2, value.length - 1)] ?? null : value;
  }
  return out;
}

/** Facts gathered outside the planner that keys depend on. */
export interface KeyFacts {
  /** The TensorFlow backend numeric stages will run on. */
  readonly backend: string;
  /** The external files each instance reads, by instance id: their paths and content hashes by file name. */
  readonly files: ReadonlyMap<string, { readonly paths: readonly string[]; readonly hashes: Readonly<Record<string, string>> }>;
}

/** Computes every instance's key record and key, dependencies first. Pure. */
export function assignKeys(expansion: Expansion, facts: KeyFacts): Plan {
  const keys = new Map<string, string>();
  const instances: KeyedInstance[] = expansion.instances.map((instance) => {
    const record: KeyRecord = {
      format: KEY_FORMAT,
      type: instance.type.name,
      version: instance.type.version,
      params: Object.fromEntries(Object.entries(instance.params).filter(([name]) => !instance.type.untracked.includes(name))),
      inputs: Object.values(instance.needs).flat().map((id) => keys.get(id) ?? '').sort(),
      files: facts.files.get(instance.id)?.hashes ?? {},
      ...(instance.type.numeric ? { backend: facts.backend } : {}),
      ...(instance.type.gather ? { gathered: Object.values(instance.needs).flat().sort() } : {}),
    };
    const key = keyOf(record);
    keys.set(instance.id, key);
    return { ...instance, key, record, files: facts.files.get(instance.id)?.paths ?? [] };
  });
  return { name: expansion.name, backend: facts.backend, stages: expansion.stages, axes: expansion.axes, instances };
}
