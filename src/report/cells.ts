import type { ResultRow } from '../stages/aggregate.js';
import type { Cell, ResultsTable } from './collect.js';

/** A lookup that failed, with a message for the user. */
export interface Problem {
  readonly problem: string;
}

type Scalar = ResultRow[string];

/**
 * Finds a column by its full name (`evaluate.accuracy`) or by its last part
 * (`accuracy`, `labelAccuracy`), unambiguous among the `preferred` columns or
 * else among all, so users need not type the stage type.
 */
export function resolveColumn(columns: readonly string[], name: string, preferred: readonly string[] = []): { readonly column: string } | Problem {
  if (columns.includes(name)) return { column: name };
  // The key columns win a short name: `accuracy` is the test accuracy, not the last epoch's.
  const first = preferred.filter((c) => columns.includes(c) && c.endsWith(`.${name}`));
  if (first.length === 1 && first[0] !== undefined) return { column: first[0] };
  const matches = columns.filter((c) => c.endsWith(`.${name}`));
  const only = matches[0];
  if (matches.length === 1 && only !== undefined) return { column: only };
  if (matches.length > 1) return { problem: `"${name}" could be any of ${matches.join(', ')}; give the full column name` };
  return { problem: `no column "${name}" (columns: ${columns.join(', ')})` };
}

/** Which way `sortCells` orders: `natural` is numbers largest first and text A–Z; `reverse` the opposite. */
export type SortDirection = 'natural' | 'reverse';

function compareValues(a: Scalar | undefined, b: Scalar | undefined, direction: SortDirection): number {
  const missingA = a === null || a === undefined;
  const missingB = b === null || b === undefined;
  // Cells without the value go last whatever the direction.
  if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
  const order = typeof a === 'number' && typeof b === 'number' ? b - a : String(a).localeCompare(String(b), undefined, { numeric: true });
  return direction === 'natural' ? order : -order;
}

/**
 * Sorts cells by a column: numbers from largest to smallest (the best
 * accuracy first), text alphabetically, cells lacking the value last. Stable,
 * so ties keep the plan's order.
 */
export function sortCells(cells: readonly Cell[], column: string, direction: SortDirection = 'natural'): Cell[] {
  return [...cells].sort((x, y) => compareValues(x.row[column], y.row[column], direction));
}

/** The columns whose value is the same in every row (a missing value counts as a value). */
export function constantColumns(rows: readonly ResultRow[], columns: readonly string[]): Set<string> {
  const constant = new Set<string>();
  if (rows.length < 2) return constant;
  for (const column of columns) {
    const first = JSON.stringify(rows[0]?.[column] ?? null);
    if (rows.every((r) => JSON.stringify(r[column] ?? null) === first)) constant.add(column);
  }
  return constant;
}

/** The computed cell with the highest test accuracy. */
export function bestCell(table: ResultsTable): Cell | undefined {
  return sortCells(table.cells.filter((c) => c.status === 'ok' && typeof c.row['evaluate.accuracy'] === 'number'), 'evaluate.accuracy')[0];
}

/**
 * Finds one cell from what a user typed: its instance id, the id of a stage
 * with a single cell (`evaluate-all`), or matrix values such as
 * `k=10 seeding.strategy=full` (names may be shortened to their last part).
 */
export function findCell(table: ResultsTable, selector: string): { readonly cell: Cell } | Problem {
  const byId = table.cells.find((c) => c.id === selector);
  if (byId !== undefined) return { cell: byId };
  const ofStage = table.cells.filter((c) => c.stage === selector);
  if (ofStage.length === 1 && ofStage[0] !== undefined) return { cell: ofStage[0] };
  const pairs = selector.split(/[\s,]+/).filter((p) => p !== '');
  if (ofStage.length > 1 || pairs.length === 0 || pairs.some((p) => !p.includes('='))) {
    return { problem: `no single cell "${selector}"; give an id such as ${table.cells[0]?.id ?? 'evaluate[k=10]'} or matrix values such as k=10` };
  }
  let candidates = table.cells;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const resolved = resolveColumn(['stage', ...table.matrixColumns], pair.slice(0, eq));
    if ('problem' in resolved) return resolved;
    const wanted = pair.slice(eq + 1);
    candidates = candidates.filter((c) => c.row[resolved.column] !== undefined && String(c.row[resolved.column]) === wanted);
  }
  const [first, ...others] = candidates;
  if (first === undefined) return { problem: `no cell matches "${selector}"` };
  if (others.length > 0) return { problem: `"${selector}" matches ${candidates.length} cells: ${candidates.map((c) => c.id).join(', ')}` };
  return { cell: first };
}

/**
 * The column holding each grid cell's K: the matrix column that always equals
 * the k-means stage's `k`, or that summary field itself when no matrix column does.
 */
export function kColumn(table: ResultsTable): string | undefined {
  const withK = table.cells.filter((c) => typeof c.row['kmeans.k'] === 'number');
  if (withK.length === 0) return table.matrixColumns.find((c) => c === 'k' || c.endsWith('.k'));
  // Cells without the column (active-learning rounds, whose clusters only guide queries) do not decide it.
  return table.matrixColumns.find((m) => withK.some((c) => c.row[m] !== undefined) && withK.every((c) => c.row[m] === undefined || c.row[m] === c.row['kmeans.k'])) ?? 'kmeans.k';
}

/**
 * A short name for a grid cell's series: its matrix values other than K,
 * the first bare and the others as `name=value` (`part percent=50`).
 */
export function seriesLabel(cell: Cell, kcol: string | undefined, matrixColumns: readonly string[]): string {
  const parts = matrixColumns
    .filter((m) => m !== kcol && cell.row[m] !== undefined && cell.row[m] !== null)
    .map((m, i) => (i === 0 ? String(cell.row[m]) : `${m.split('.').at(-1) ?? m}=${String(cell.row[m])}`));
  return parts.length > 0 ? parts.join(' ') : cell.stage;
}

/** A name for a baseline cell (one without K): `all labels`, `random (50 labels)`, or its stage id. */
export function baselineLabel(cell: Cell): string {
  const strategy = cell.row['seed-labels.strategy'];
  const samples = cell.row['labels.samples'];
  if (strategy === 'all') return 'all labels';
  if (strategy === 'random') return typeof samples === 'number' ? `random (${samples} labels)` : 'random labels';
  return cell.stage;
}
