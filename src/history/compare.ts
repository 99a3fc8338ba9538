import { explainChange, type KeyRecord } from '../cache/key.js';
import { readSummary } from '../stages/summary.js';
import { flattenJson, type Scalar } from '../util/flatten.js';
import type { JsonValue } from '../util/json.js';
import type { RunRecord, StageRecord } from './history.js';

/** A scalar metric value as compared. */
export type MetricValue = Scalar;

/** A param (or command-line selection) whose value differs between two runs; undefined where a run lacks it. */
export interface ParamChange {
  readonly name: string;
  readonly a: JsonValue | undefined;
  readonly b: JsonValue | undefined;
}

/** A metric of one stage instance whose value differs between two runs. */
export interface MetricChange {
  /** The instance id, such as `evaluate[k=10 seeding.strategy=full]`. */
  readonly id: string;
  /** The metric or detail of the summary, dotted when nested (`final.loss`). */
  readonly metric: string;
  readonly a: MetricValue | undefined;
  readonly b: MetricValue | undefined;
}

/** What differs between two runs. */
export interface Comparison {
  readonly a: RunRecord;
  readonly b: RunRecord;
  readonly params: readonly ParamChange[];
  /** Instances in only one of the runs (the grid changed). */
  readonly onlyInA: readonly string[];
  readonly onlyInB: readonly string[];
  /** Instances whose key differs: their inputs or params changed. */
  readonly rekeyed: readonly string[];
  /** For rekeyed instances whose key records are known, what changed: `param epochs changed (20 → 5)`, `input cluster[k=10] changed`. */
  readonly why: Readonly<Record<string, readonly string[]>>;
  readonly metrics: readonly MetricChange[];
  /** Instances left out by --only in either run: not compared. */
  readonly notSelected: readonly string[];
}

/**
 * A summary's metrics and details, flattened. Timings are left out: they
 * differ on every execution, so comparing them would bury the changes that
 * matter. A summary of the shape before metrics and timings were apart has none.
 */
function scalars(stored: JsonValue): Map<string, MetricValue> {
  const summary = readSummary(stored);
  if (summary === null) return new Map();
  return new Map(Object.entries(flattenJson({ ...summary.metrics, ...(summary.details ?? {}) })));
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Compares two recorded runs: params (after `--set`) and selections that
 * differ, instances present in one run only, and, for each instance in both,
 * every summary metric whose value changed (timings left out).
 */
export function compareRuns(
  a: RunRecord, aStages: readonly StageRecord[], b: RunRecord, bStages: readonly StageRecord[],
  recordOf: (key: string) => KeyRecord | null = () => null,
): Comparison {
  const params: ParamChange[] = [];
  const names = [...new Set([...Object.keys(a.params), ...Object.keys(b.params)])];
  for (const name of names) if (!same(a.params[name], b.params[name])) params.push({ name, a: a.params[name], b: b.params[name] });
  const options = [...new Set([...Object.keys(a.options), ...Object.keys(b.options)])];
  for (const name of options) if (!same(a.options[name], b.options[name])) params.push({ name: `--${name}`, a: a.options[name], b: b.options[name] });
  if (a.pipeline !== b.pipeline) params.unshift({ name: 'pipeline', a: a.pipeline, b: b.pipeline });
  // Provenance that differs: a change of code or file explains a change of results as much as a param.
  const pa = a.provenance;
  const pb = b.provenance;
  if (pa !== null && pb !== null) {
    if (pa.pipelineSha256 !== pb.pipelineSha256) params.push({ name: 'pipeline file', a: pa.pipelineSha256.slice(0, 12), b: pb.pipelineSha256.slice(0, 12) });
    const commit = (p: typeof pa): string | null => (p.git === null ? null : `${p.git.commit.slice(0, 12)}${p.git.dirty ? ' (changed)' : ''}`);
    if (commit(pa) !== commit(pb)) params.push({ name: 'git commit', a: commit(pa), b: commit(pb) });
    if (pa.seedflow !== pb.seedflow) params.push({ name: 'seedflow', a: pa.seedflow, b: pb.seedflow });
  }

  // An instance left out by --only in either run was not computed there: not a difference of results.
  const notSelected = new Set([...aStages, ...bStages].filter((s) => s.outcome === 'not-selected').map((s) => s.id));
  const inA = new Map(aStages.map((s) => [s.id, s]));
  const inB = new Map(bStages.map((s) => [s.id, s]));
  const metrics: MetricChange[] = [];
  const rekeyed: string[] = [];
  const why: Record<string, string[]> = {};
  const owners = new Map([...aStages, ...bStages].map((s) => [s.key, s.id]));
  for (const stageB of bStages) {
    const stageA = inA.get(stageB.id);
    if (stageA === undefined || notSelected.has(stageB.id)) continue;
    if (stageA.key !== stageB.key) {
      rekeyed.push(stageB.id);
      const before = recordOf(stageA.key);
      const after = recordOf(stageB.key);
      if (before !== null && after !== null) why[stageB.id] = explainChange(before, after, (key) => owners.get(key));
    }
    const va = scalars(stageA.summary);
    const vb = scalars(stageB.summary);
    for (const metric of [...new Set([...va.keys(), ...vb.keys()])]) {
      if (!same(va.get(metric), vb.get(metric))) metrics.push({ id: stageB.id, metric, a: va.get(metric), b: vb.get(metric) });
    }
  }
  return {
    a, b, params, rekeyed, why, metrics,
    onlyInA: aStages.filter((s) => !inB.has(s.id) && !notSelected.has(s.id)).map((s) => s.id),
    onlyInB: bStages.filter((s) => !inA.has(s.id) && !notSelected.has(s.id)).map((s) => s.id),
    notSelected: [...notSelected].sort(),
  };
}
