import type { ResultsTable } from '../report/collect.js';
import { ALPHA, compareGroups, COMPARED_METRIC, groupColumns, REPLICATE_METRICS, replicateGroups, statColumns, type ComparisonRow } from '../report/replicates.js';
import type { ResultRow } from '../stages/aggregate.js';
import { formatP } from '../stats/format.js';

/** Text of a number for people: 4 significant digits, blank when absent. */
function num(value: unknown, digits = 4): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '';
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(digits)));
}

/** `mean ± half-width` of a statistics row's metric, or the mean alone when there is no interval. */
function meanCi(row: ResultRow, metric: string): string {
  const names = statColumns(metric);
  const mean = row[names.mean];
  const low = row[names.low];
  const high = row[names.high];
  if (typeof mean !== 'number') return '';
  if (typeof low !== 'number' || typeof high !== 'number') return num(mean);
  return `${num(mean)} ± ${num((high - low) / 2, 2)}`;
}

/** The statistics view: one row per cell over its replicates, every column numeric (csv, json). */
export function statisticsRows(table: ResultsTable): { columns: string[]; rows: ResultRow[] } {
  const rows = replicateGroups(table).map((g) => ({ id: g.id, ...g.row }));
  const columns = ['id', 'stage', ...groupColumns(table), 'n', 'missing'];
  for (const metric of REPLICATE_METRICS) {
    const names = statColumns(metric);
    for (const c of [names.mean, names.sd, names.low, names.high]) if (rows.some((r) => c in r)) columns.push(c);
  }
  return { columns, rows };
}

/** The statistics view for people: mean ± 95% interval half-width per metric, and the standard deviation of the accuracy. */
export function statisticsText(table: ResultsTable): { head: string[]; rows: string[][]; numeric: boolean[] } {
  const groups = replicateGroups(table);
  const metrics = REPLICATE_METRICS.filter((m) => groups.some((g) => typeof g.row[statColumns(m).mean] === 'number'));
  const head = ['cell', 'n', ...metrics.map((m) => `${m.split('.').at(-1) ?? m} (mean ± 95% CI)`), 'accuracy sd'];
  const rows = groups.map((g) => [g.label, `${String(g.row['n'])}${g.row['missing'] ? `/${Number(g.row['n']) + Number(g.row['missing'])}` : ''}`, ...metrics.map((m) => meanCi(g.row, m)), num(g.row[statColumns('evaluate.accuracy').sd], 2)]);
  return { head, rows, numeric: head.map((_, i) => i > 0) };
}

/** The comparisons table's columns, as csv and json carry them. */
export const COMPARISON_COLUMNS = ['a', 'b', 'kind', 'k', 'n', 'diff', 'ciLow', 'ciHigh', 'tP', 'tPHolm', 'wilcoxonP', 'wilcoxonPHolm', 'significant'] as const;

/**
 * The comparisons of a table's strategies on the test accuracy; with
 * `against`, only those with that series, or a problem naming the series
 * there are when it is none of them.
 */
export function comparisonRows(table: ResultsTable, against?: string): ComparisonRow[] | { problem: string } {
  const groups = replicateGroups(table);
  if (against !== undefined && !groups.some((g) => g.series === against)) {
    const names = [...new Set(groups.map((g) => g.series))];
    return { problem: `--against: no series is named "${against}"; the series are ${names.map((n) => `"${n}"`).join(', ') || 'none (nothing computed yet)'}` };
  }
  return compareGroups(groups, COMPARED_METRIC, against);
}

/** The comparisons table for people; significant differences are marked with `*`. */
export function comparisonText(rows: readonly ComparisonRow[]): { head: string[]; rows: string[][]; numeric: boolean[]; note: string } {
  const head = ['a', 'b', 'n', 'a − b', '95% CI', 'p (t)', 'p (t, Holm)', 'p (Wilcoxon)', 'p (Wilcoxon, Holm)', ''];
  const text = rows.map((r) => [
    r.a, r.b, String(r.n), num(r.diff, 3), r.ciLow === null || r.ciHigh === null ? '' : `[${num(r.ciLow, 3)}, ${num(r.ciHigh, 3)}]`,
    formatP(r.tP), formatP(r.tPHolm), formatP(r.wilcoxonP), formatP(r.wilcoxonPHolm), r.significant ? '*' : '',
  ]);
  const note = `${COMPARED_METRIC}, paired by replicate seed; Holm's adjustment over the ${rows.length} comparisons; * marks a Holm-adjusted t-test p below ${ALPHA}.`;
  return { head, rows: text, numeric: head.map((_, i) => i >= 2 && i <= 8), note };
}
