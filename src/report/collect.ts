import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from '../cache/artifact.js';
import type { Store } from '../cache/store.js';
import { InstanceGraph } from '../plan/instance-graph.js';
import { inRound, ROUND_AXIS } from '../plan/planner.js';
import type { KeyedInstance, Plan, StageRole } from '../plan/types.js';
import { rowOf, summaryColumns, type ResultRow } from '../stages/aggregate.js';
import { openArtifact } from '../stages/inputs.js';
import { readSummary } from '../stages/summary.js';
import { flattenJson } from '../util/flatten.js';
import { readNpy } from '../util/npy.js';
import type { JsonValue } from '../util/json.js';

/** Whether a cell's evaluation is in the store. */
export type CellStatus = 'ok' | 'missing' | 'damaged';

/** One grid cell: an instance of a stage type whose role is `evaluation`, with its metrics when computed. */
export interface Cell {
  /** The instance id, such as `evaluate[k=10 seeding.strategy=full]`. */
  readonly id: string;
  readonly stage: string;
  readonly matrix: Readonly<Record<string, JsonValue>>;
  readonly key: string;
  readonly status: CellStatus;
  /** Why a damaged artifact cannot be read. */
  readonly reason?: string;
  /**
   * The aggregate stage's row of the evaluation (matrix values, then every
   * upstream summary by stage type, such as `evaluate.accuracy`), plus
   * `status`. A cell not computed has only its stage, matrix and status.
   */
  readonly row: ResultRow;
  /** The training instance upstream of the evaluation, whose artifact holds `history.json`. */
  readonly train?: { readonly id: string; readonly key: string };
}

/** Every cell of a planned pipeline, computed or not. */
export interface ResultsTable {
  readonly pipeline: string;
  readonly cells: readonly Cell[];
  /** The union of the rows' columns: stage, status, matrix values, the key metrics, then the rest. */
  readonly columns: readonly string[];
  /** The flattened matrix columns (`k`, `seeding.strategy`...). */
  readonly matrixColumns: readonly string[];
}

/** The metrics every results view shows, in order, when the cells have them. */
export const KEY_METRICS = [
  'labels.samples',
  'labels.trueLabelsUsed',
  'labels.classes',
  'labels.labelAccuracy',
  'train.trainSeconds',
  'evaluate.accuracy',
  'evaluate.loss',
] as const;

/** The metrics an evaluation-role stage of any type shows as the evaluation's (`evaluate.accuracy`). */
const EVALUATION_METRICS = ['accuracy', 'loss'] as const;

/** The column of a cell's class coverage: how many classes its labelled set contains. */
export const CLASSES_COLUMN = 'labels.classes';

/**
 * How many distinct classes the cell's training labels contain (the `y.npy`
 * of the nearest labelling stage upstream), or null when there is none to read.
 * With 10 to 50 labels a class is often missing, which explains much of the
 * spread between replicates.
 */
async function classCoverage(graph: InstanceGraph<KeyedInstance>, store: Store, cell: KeyedInstance, labelsItself: boolean): Promise<number | null> {
  const labeller = labelsItself ? cell : upstreamWithRole(graph, cell, 'labelling');
  if (labeller === undefined) return null;
  const file = join(store.objectDir(labeller.key), 'y.npy');
  if (!existsSync(file)) return null;
  try {
    const { data } = await readNpy(file);
    const seen = new Set<number>();
    for (let i = 0; i < data.length; i++) seen.add(Number(data[i]));
    return seen.size;
  } catch {
    return null;
  }
}

/** The nearest instance upstream of `start` (itself excluded) made by a stage type of `role`. */
function upstreamWithRole(graph: InstanceGraph<KeyedInstance>, start: KeyedInstance, role: StageRole): KeyedInstance | undefined {
  return lineage(graph, start).find((instance) => instance.type.role === role);
}

/** Everything upstream of `start` (itself excluded), nearest first. */
function lineage(graph: InstanceGraph<KeyedInstance>, start: KeyedInstance): KeyedInstance[] {
  return [...graph.upstream(graph.needsOf(start.id))].map((id) => graph.node(id)).filter((i): i is KeyedInstance => i !== undefined);
}

/**
 * For a cell not evaluated yet, the summaries of the upstream instances that
 * are in the store, named as in the aggregate's rows (`seed-labels.labelAccuracy`):
 * a failed training still shows how good its seed labels were.
 */
async function upstreamSummaries(graph: InstanceGraph<KeyedInstance>, store: Store, cell: KeyedInstance): Promise<ResultRow> {
  const row: ResultRow = {};
  // Farthest first, so a nearer stage of the same type wins, as in the aggregate's rows.
  for (const instance of lineage(graph, cell).reverse()) {
    // A round not computed yet is not the round before it, nor is what that round feeds.
    const otherRound = inRound(instance.matrix) && instance.matrix[ROUND_AXIS] !== cell.matrix[ROUND_AXIS];
    if (otherRound || (await store.state(instance.key)).state !== 'ok') continue;
    const { summary } = await readManifest(store.objectDir(instance.key));
    Object.assign(row, summaryColumns(instance.type.name, readSummary(summary ?? null)));
  }
  return row;
}

/** The metrics of a cell's training labels, read from the nearest upstream stage whose role is `labelling`. */
const LABEL_METRICS = ['samples', 'trueLabelsUsed', 'labelAccuracy'] as const;

/**
 * The cell's training-label columns (`labels.samples`, `labels.trueLabelsUsed`,
 * `labels.labelAccuracy`) from the nearest upstream instance of a labelling
 * stage type (seed-labels, propagate), whatever its type is called.
 */
async function labelColumns(graph: InstanceGraph<KeyedInstance>, store: Store, cell: KeyedInstance, labelsItself = false): Promise<ResultRow> {
  const labeller = labelsItself ? cell : upstreamWithRole(graph, cell, 'labelling');
  if (labeller === undefined || (await store.state(labeller.key)).state !== 'ok') return {};
  const summary = readSummary((await readManifest(store.objectDir(labeller.key))).summary ?? null);
  if (summary === null) return {};
  return Object.fromEntries(LABEL_METRICS.flatMap((name) => (name in summary.metrics ? [[`labels.${name}`, summary.metrics[name] ?? null]] : [])));
}

/**
 * Reads every grid cell of a planned pipeline from the store: the manifests
 * of the instances whose stage type's role is `evaluation`, whose lineage
 * carries the seed-labels and train summaries. Cells not yet computed (or damaged) are kept, marked so.
 */
export async function collectResults(plan: Plan, store: Store): Promise<ResultsTable> {
  const graph = new InstanceGraph(plan.instances);
  const cells: Cell[] = [];
  for (const instance of plan.instances.filter((i) => i.type.role === 'evaluation')) {
    const trainer = upstreamWithRole(graph, instance, 'training');
    const base = { id: instance.id, stage: instance.stage, matrix: instance.matrix, key: instance.key, ...(trainer ? { train: { id: trainer.id, key: trainer.key } } : {}) };
    const state = await store.state(instance.key);
    if (state.state === 'ok') {
      // The plan names the cell: an artifact shared by twin instances (equal keys) records only the first one's stage and matrix.
      const artifact = { ...(await openArtifact(store.objectDir(instance.key))), stage: instance.stage, matrix: instance.matrix };
      // A cell that chooses its own labels (an active-learning round) says how many it consumed itself.
      const labelsItself = artifact.summary !== null && typeof artifact.summary.metrics['trueLabelsUsed'] === 'number';
      const classes = await classCoverage(graph, store, instance, labelsItself);
      const row: ResultRow = { ...rowOf(artifact), ...(await labelColumns(graph, store, instance, labelsItself)) };
      // An evaluation stage of another type (active-learning scores its model on the test set itself) fills the evaluation's columns, so every view compares all cells alike.
      for (const metric of EVALUATION_METRICS) {
        const own = artifact.summary?.metrics[metric];
        if (instance.type.name !== 'evaluate' && typeof own === 'number') row[`evaluate.${metric}`] = own;
      }
      if (classes !== null) row[CLASSES_COLUMN] = classes;
      cells.push({ ...base, status: 'ok', row: { stage: row['stage'] ?? instance.stage, status: 'ok', ...row } });
    } else {
      const status = state.state;
      const row: ResultRow = { stage: instance.stage, status, ...flattenJson(instance.matrix), ...(await upstreamSummaries(graph, store, instance)), ...(await labelColumns(graph, store, instance, inRound(instance.matrix))) };
      cells.push({ ...base, status, ...(state.state === 'damaged' ? { reason: state.reason } : {}), row });
    }
  }
  const matrixColumns: string[] = [];
  for (const cell of cells) for (const c of Object.keys(flattenJson(cell.matrix))) if (!matrixColumns.includes(c)) matrixColumns.push(c);
  const columns = ['stage', 'status', ...matrixColumns, ...KEY_METRICS.filter((m) => cells.some((c) => m in c.row))];
  for (const cell of cells) for (const c of Object.keys(cell.row)) if (!columns.includes(c)) columns.push(c);
  return { pipeline: plan.name, cells, columns, matrixColumns };
}

/** One epoch of a train artifact's `history.json`. */
export interface EpochRecord {
  readonly epoch: number;
  readonly [metric: string]: number;
}

/** The training history of a cell's train artifact, or null when it is not in the store. */
export async function readHistory(store: Store, trainKey: string): Promise<EpochRecord[] | null> {
  const file = join(store.objectDir(trainKey), 'history.json');
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as EpochRecord[];
  } catch {
    return null;
  }
}

/** The parts of an evaluate artifact's `metrics.json` a report draws. */
export interface ConfusionFile {
  readonly accuracy: number;
  /** `confusion[true][predicted]` counts. */
  readonly confusion: readonly (readonly number[])[];
  readonly classNames?: readonly string[];
}

/** A cell's confusion matrix, or null when its artifact is not in the store. */
export async function readConfusion(store: Store, cellKey: string): Promise<ConfusionFile | null> {
  try {
    return JSON.parse(await readFile(join(store.objectDir(cellKey), 'metrics.json'), 'utf8')) as ConfusionFile;
  } catch {
    return null;
  }
}

/** What the store holds of one instance, for timings and the DAG. */
export interface InstanceFacts {
  readonly id: string;
  readonly stage: string;
  readonly state: 'ok' | 'missing' | 'damaged';
  /** How long the stage took when it was computed. */
  readonly durationMs?: number;
  readonly createdAt?: string;
}

/** The state and recorded duration of every instance of a plan. */
export async function instanceFacts(plan: Plan, store: Store): Promise<InstanceFacts[]> {
  const out: InstanceFacts[] = [];
  for (const instance of plan.instances) {
    const state = await store.state(instance.key);
    if (state.state !== 'ok') {
      out.push({ id: instance.id, stage: instance.stage, state: state.state });
      continue;
    }
    const manifest = await readManifest(store.objectDir(instance.key));
    out.push({ id: instance.id, stage: instance.stage, state: 'ok', durationMs: manifest.durationMs, createdAt: manifest.createdAt });
  }
  return out;
}
