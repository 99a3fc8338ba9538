import { formatMatrix } from '../plan/matrix.js';
import { inRound, REPLICATE_AXIS, ROUND_AXIS } from '../plan/planner.js';
import type { ResultRow } from '../stages/aggregate.js';
import { describe } from '../stats/describe.js';
import { comparePaired, holm } from '../stats/paired.js';
import { baselineLabel, kColumn, seriesLabel } from './cells.js';
import { CLASSES_COLUMN, type Cell, type ResultsTable } from './collect.js';

/** The metrics described over replicates, in order. */
export const REPLICATE_METRICS = ['evaluate.accuracy', 'evaluate.loss', 'labels.labelAccuracy', CLASSES_COLUMN] as const;

/** The metric strategies are compared on. */
export const COMPARED_METRIC = 'evaluate.accuracy';

/** The family-wise level below which a Holm-adjusted p-value marks a difference as significant. */
export const ALPHA = 0.05;

/** One grid cell over its replicates: the cells that differ only by the replicate seed. */
export interface ReplicateGroup {
  /** The evaluation stage and matrix values other than the replicate: `evaluate[k=10 seeding.strategy=full]`. */
  readonly id: string;
  readonly stage: string;
  /** The group's name in tables and charts: `full, K=10`, `random (50 labels)`. */
  readonly label: string;
  /** The strategy's name without K (`full`, `part percent=25`), or the baseline's. */
  readonly series: string;
  readonly k: number | null;
  /**
   * The labels it stands for, which comparisons pair on: K for a cell of the
   * K grid (the labels it asked for: typical picks skip small clusters and
   * may consume fewer), the labels a round of active learning consumed when
   * every replicate consumed as many, else null.
   */
  readonly budget: number | null;
  /** Whether it is a baseline, a cell without K that does not repeat in rounds. */
  readonly baseline: boolean;
  /** Every replicate's cell, computed or not, in replicate order. */
  readonly cells: readonly Cell[];
  /** The statistics row: stage, matrix values, n, then mean, sd and 95% interval of each metric. */
  readonly row: ResultRow;
}

/** Whether a results table comes from a pipeline with replicates. */
export function hasReplicates(table: ResultsTable): boolean {
  return table.matrixColumns.includes(REPLICATE_AXIS);
}

/** The matrix columns without the replicate's. */
export function groupColumns(table: ResultsTable): string[] {
  return table.matrixColumns.filter((c) => c !== REPLICATE_AXIS);
}

function metricValues(cells: readonly Cell[], column: string): number[] {
  return cells.flatMap((c) => {
    const v = c.status === 'ok' ? c.row[column] : undefined;
    return typeof v === 'number' && Number.isFinite(v) ? [v] : [];
  });
}

/** The statistics columns of one metric. */
export function statColumns(metric: string): { mean: string; sd: string; low: string; high: string } {
  return { mean: `${metric}.mean`, sd: `${metric}.sd`, low: `${metric}.ci95Low`, high: `${metric}.ci95High` };
}

/** Groups a table's cells by everything but the replicate, in the plan's order, with each group's statistics. */
export function replicateGroups(table: ResultsTable): ReplicateGroup[] {
  const columns = groupColumns(table);
  const kcol = kColumn(table);
  const groups = new Map<string, Cell[]>();
  for (const cell of table.cells) {
    const { [REPLICATE_AXIS]: _replicate, ...rest } = cell.matrix;
    const id = Object.keys(rest).length === 0 ? cell.stage : `${cell.stage}[${formatMatrix(rest)}]`;
    groups.set(id, [...(groups.get(id) ?? []), cell]);
  }
  return [...groups.entries()].map(([id, cells]) => {
    const first = cells[0] as Cell;
    // A round is drawn at the labels it consumed, even when a K upstream (its seed set's) reaches its row.
    const rounds = inRound(first.matrix);
    const kValue = kcol === undefined || rounds ? undefined : cells.map((c) => c.row[kcol]).find((v) => typeof v === 'number');
    const k = typeof kValue === 'number' ? kValue : null;
    // A round's series is its stage and matrix values but the round: `active-10 margin`.
    const series = k === null ? (rounds ? [first.stage, ...columns.filter((c) => c !== ROUND_AXIS && first.row[c] !== undefined && first.row[c] !== null).map((c) => String(first.row[c]))].join(' ') : baselineLabel(first)) : seriesLabel(first, kcol, columns);
    const row: ResultRow = { stage: first.stage };
    for (const c of columns) row[c] = first.row[c] ?? null;
    const computed = cells.filter((c) => c.status === 'ok');
    row['n'] = computed.length;
    row['missing'] = cells.length - computed.length;
    for (const metric of REPLICATE_METRICS) {
      const values = metricValues(computed, metric);
      if (values.length === 0) continue;
      const d = describe(values);
      const names = statColumns(metric);
      row[names.mean] = d.mean;
      row[names.sd] = d.sd;
      row[names.low] = d.ciLow;
      row[names.high] = d.ciHigh;
    }
    const labels = metricValues(computed, 'labels.trueLabelsUsed');
    const used = labels.length > 0 ? describe(labels).mean : null;
    if (used !== null) row['labels.trueLabelsUsed.mean'] = used;
    // A round stands for a budget only when every replicate consumed the same labels (an exhausted pool or a short seed set can differ).
    const budget = k ?? (rounds && labels.length > 0 && labels.every((l) => l === labels[0]) ? used : null);
    const label = k !== null ? `${series}, K=${k}` : rounds ? `${series}, ${used === null ? `round ${String(first.matrix[ROUND_AXIS])}` : `${Number(used.toFixed(1))} labels`}` : series;
    return { id, stage: first.stage, label, series, k, budget, baseline: k === null && !rounds, cells, row };
  });
}

/** One paired comparison of the comparisons table: a − b over the replicates both have. */
export interface ComparisonRow {
  readonly a: string;
  readonly b: string;
  /**
   * `strategies` (two strategies at one K), `random` (a strategy against the
   * random baseline with as many labels) or `budget` (two stages at one label
   * budget: an active-learning round against a cell of the K grid, say).
   */
  readonly kind: 'strategies' | 'random' | 'budget';
  readonly k: number | null;
  readonly n: number;
  readonly diff: number | null;
  readonly ciLow: number | null;
  readonly ciHigh: number | null;
  readonly tP: number | null;
  readonly tPHolm: number | null;
  readonly wilcoxonP: number | null;
  readonly wilcoxonPHolm: number | null;
  /** The Holm-adjusted paired t-test p-value is below ALPHA. */
  readonly significant: boolean;
}

function sameArtifacts(a: ReplicateGroup, b: ReplicateGroup): boolean {
  const keys = (g: ReplicateGroup): string => g.cells.map((c) => c.key).sort().join(' ');
  return keys(a) === keys(b);
}

function bySeed(group: ReplicateGroup, metric: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const cell of group.cells) {
    const seed = cell.matrix[REPLICATE_AXIS];
    const value = cell.status === 'ok' ? cell.row[metric] : undefined;
    if (typeof seed === 'number' && typeof value === 'number' && Number.isFinite(value)) out.set(seed, value);
  }
  return out;
}

/**
 * The comparisons table: every pair of strategies within a K, every other
 * pair of series at one label budget (K, or a round's labels consumed), and
 * every strategy against the random baseline that drew as many labels as the
 * strategy looked up, paired by replicate seed: the mean difference with its
 * 95% interval, the paired t-test and the Wilcoxon signed-rank test, each
 * Holm-adjusted across the whole table. Rounds of one series are never paired
 * with each other: more labels winning is not a finding. With `against` (a
 * series), only the pairs holding that series are kept, turned so it is `b`,
 * and Holm's adjustment runs over those alone.
 */
export function compareGroups(groups: readonly ReplicateGroup[], metric: string = COMPARED_METRIC, against?: string): ComparisonRow[] {
  let pairs: { a: ReplicateGroup; b: ReplicateGroup; kind: ComparisonRow['kind'] }[] = [];
  groups.forEach((a, i) => {
    for (const b of groups.slice(i + 1)) {
      // Twins (one artifact per replicate for both: round 1 of two query strategies) are one result, not two.
      if (sameArtifacts(a, b)) continue;
      if (a.k !== null && a.k === b.k && a.stage === b.stage) pairs.push({ a, b, kind: 'strategies' });
      else if (a.budget !== null && a.budget === b.budget && a.series !== b.series) pairs.push({ a, b, kind: 'budget' });
    }
  });
  const randoms = groups.filter((g) => g.baseline && g.cells.some((c) => c.row['seed-labels.strategy'] === 'random'));
  for (const random of randoms) {
    const drawn = random.cells.map((c) => c.row['labels.samples']).find((v) => typeof v === 'number');
    // A round without a budget (its replicates consumed different labels) is paired with nothing.
    for (const a of groups.filter((g) => !g.baseline && (g.k !== null || g.budget !== null))) {
      const used = a.row['labels.trueLabelsUsed.mean'];
      if (typeof drawn === 'number' && typeof used === 'number' && used === drawn) pairs.push({ a, b: random, kind: 'random' });
    }
  }
  if (against !== undefined) {
    pairs = pairs.filter((p) => p.a.series === against || p.b.series === against).map((p) => (p.a.series === against ? { ...p, a: p.b, b: p.a } : p));
  }
  const raw = pairs.map(({ a, b, kind }) => {
    const left = bySeed(a, metric);
    const right = bySeed(b, metric);
    const seeds = [...left.keys()].filter((s) => right.has(s)).sort((x, y) => x - y);
    const result = comparePaired(seeds.map((s) => left.get(s) as number), seeds.map((s) => right.get(s) as number));
    return { a: a.label, b: b.label, kind, k: a.budget ?? b.budget, result };
  });
  const tAdjusted = holm(raw.map((r) => r.result.tTest.p));
  const wAdjusted = holm(raw.map((r) => r.result.wilcoxon.p));
  return raw.map((r, i) => {
    const tPHolm = tAdjusted[i] ?? null;
    return {
      a: r.a, b: r.b, kind: r.kind, k: r.k, n: r.result.n,
      diff: r.result.diff, ciLow: r.result.ciLow, ciHigh: r.result.ciHigh,
      tP: r.result.tTest.p, tPHolm, wilcoxonP: r.result.wilcoxon.p, wilcoxonPHolm: wAdjusted[i] ?? null,
      significant: tPHolm !== null && tPHolm < ALPHA,
    };
  });
}
