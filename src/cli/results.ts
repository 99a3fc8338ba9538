import { join, resolve } from 'node:path';
import { Store, StoreFileError } from '../cache/store.js';
import type { KeyRecord } from '../cache/key.js';
import { applyOverrides } from '../config/overrides.js';
import { preparePlan } from '../executor/prepare.js';
import type { Comparison, MetricValue } from '../history/compare.js';
import type { RunRecord } from '../history/history.js';
import { constantColumns, resolveColumn, sortCells } from '../report/cells.js';
import { collectResults, KEY_METRICS, type Cell, type ResultsTable } from '../report/collect.js';
import { hasReplicates } from '../report/replicates.js';
import type { ResultRow } from '../stages/aggregate.js';
import { toCsv } from '../stages/aggregate.js';
import { readSummary } from '../stages/summary.js';
import type { JsonValue } from '../util/json.js';
import { EXIT } from './exit-codes.js';
import { checkOutputFileFlag, moduleRoots, storeRoot } from './options.js';
import { formatDuration } from './progress.js';
import { comparisonRows, comparisonText, COMPARISON_COLUMNS, statisticsRows, statisticsText } from './statistics.js';

/** The command-line values these commands read (a subset of the CLI's options). */
export interface ResultsValues {
  readonly set?: readonly string[] | undefined;
  readonly store?: string | undefined;
  readonly format?: string | undefined;
  readonly sort?: string | undefined;
  readonly json?: boolean | undefined;
  readonly output?: string | undefined;
  readonly cell?: string | undefined;
  readonly 'allow-modules'?: readonly string[] | undefined;
  readonly compare?: boolean | undefined;
  readonly 'per-replicate'?: boolean | undefined;
  readonly against?: string | undefined;
}

/** Quotes a word for a POSIX shell when it needs it. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** The `seedflow run` command that computes what is missing, keeping the user's `--store` and `--set`. */
export function rerunCommand(file: string, values: { readonly store?: string | undefined; readonly set?: readonly string[] | undefined }): string {
  const words = ['seedflow', 'run', file, ...(values.store !== undefined ? ['--store', values.store] : []), ...(values.set ?? []).flatMap((s) => ['--set', s])];
  return words.map(shellWord).join(' ');
}

/** The formats of `seedflow results`. */
export const RESULT_FORMATS = ['table', 'csv', 'json', 'markdown'] as const;
type ResultFormat = (typeof RESULT_FORMATS)[number];

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}
function err(text: string): void {
  process.stderr.write(`${text}\n`);
}
function usage(message: string): number {
  err(`seedflow: ${message}\nRun "seedflow help" for usage.`);
  return EXIT.invalid;
}

function onePipeline(positionals: readonly string[]): string | undefined {
  return positionals.length === 1 ? positionals[0] : undefined;
}

/** A value as the table and markdown views show it: 4 significant digits, blank when absent. */
export function formatValue(value: ResultRow[string] | JsonValue | undefined): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** A text table with numbers right-aligned. */
function alignedTable(head: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function markdownTable(head: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  return [
    `| ${head.map(esc).join(' | ')} |`,
    `| ${head.map((_, i) => (numeric[i] ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The columns of the table and markdown views: stage, status, matrix values and the key metrics, those equal in every cell left out. */
export function viewColumns(table: ResultsTable, cells: readonly Cell[]): { shown: string[]; constant: string[] } {
  const candidates = ['stage', 'status', ...table.matrixColumns, ...KEY_METRICS].filter((c) => table.columns.includes(c));
  const constant = constantColumns(cells.map((c) => c.row), candidates);
  return { shown: candidates.filter((c) => !constant.has(c)), constant: candidates.filter((c) => constant.has(c)) };
}

/** Headers without the stage type (`accuracy` for `evaluate.accuracy`) where that stays unique; matrix columns keep their names. */
export function shortNames(columns: readonly string[], matrixColumns: readonly string[]): string[] {
  const short = columns.map((c) => (matrixColumns.includes(c) ? c : c.split('.').at(-1) ?? c));
  return short.map((s, i) => (short.indexOf(s) === short.lastIndexOf(s) ? s : columns[i] ?? s));
}

/**
 * `seedflow results <pipeline>`: every grid cell's metrics. The table and
 * markdown views show the key columns and hide those equal in every cell;
 * csv and json carry every column. `--sort` orders by a column, numbers
 * largest first.
 */
export async function cmdResults(positionals: readonly string[], values: ResultsValues): Promise<number> {
  const file = onePipeline(positionals);
  if (file === undefined) return usage('seedflow results takes one pipeline file');
  const format = (values.json ? 'json' : values.format ?? 'table') as ResultFormat;
  if (!RESULT_FORMATS.includes(format)) return usage(`--format must be one of ${RESULT_FORMATS.join(', ')} for results, got "${values.format ?? ''}"`);
  if (values.against !== undefined && values.compare !== true) return usage('--against chooses what --compare pairs with: add --compare');
  const store = new Store(storeRoot(values, 'read', file), { readOnly: true });
  const { plan } = await preparePlan({ file, sets: values.set ?? [], store, allowDownload: false, log: (_, m) => err(m), moduleRoots: moduleRoots(values) });
  const table = await collectResults(plan, store);
  if (values.compare === true || (hasReplicates(table) && values['per-replicate'] !== true)) {
    if (values.sort !== undefined) return usage('--sort orders the per-replicate rows: add --per-replicate');
    return replicateStatistics(table, format, values.compare === true ? { against: values.against } : null, file);
  }
  let cells: readonly Cell[] = table.cells;
  if (values.sort !== undefined) {
    // `-COLUMN` reverses the order (smallest first, Z–A), as in many tools' sort keys.
    const reverse = values.sort.startsWith('-');
    const column = resolveColumn(table.columns, reverse ? values.sort.slice(1) : values.sort, [...table.matrixColumns, ...KEY_METRICS]);
    if ('problem' in column) return usage(`--sort: ${column.problem}`);
    cells = sortCells(cells, column.column, reverse ? 'reverse' : 'natural');
  }
  const missing = cells.filter((c) => c.status !== 'ok');
  if (format === 'csv') {
    process.stdout.write(toCsv(cells.map((c) => ({ id: c.id, ...c.row })), ['id', ...table.columns]));
  } else if (format === 'json') {
    out(JSON.stringify({ pipeline: table.pipeline, columns: ['id', ...table.columns], rows: cells.map((c) => ({ id: c.id, ...c.row })) }));
  } else {
    const { shown, constant } = viewColumns(table, cells);
    const numeric = shown.map((c) => cells.some((cell) => typeof cell.row[c] === 'number') && !table.matrixColumns.includes(c));
    const rows = cells.map((c) => shown.map((col) => formatValue(c.row[col])));
    const head = shortNames(shown, table.matrixColumns);
    if (format === 'markdown') {
      out(markdownTable(head, rows, numeric));
      if (constant.length > 0) out(`\nSame in every cell: ${constant.map((c) => `${c} = ${formatValue(cells[0]?.row[c]) || '–'}`).join(', ')}.`);
    } else {
      out(`${table.pipeline}: ${cells.length} cells, ${cells.length - missing.length} computed, ${missing.length} missing`);
      out(alignedTable(head, rows, numeric));
      if (constant.length > 0) out(`same in every cell: ${constant.map((c) => `${c}=${formatValue(cells[0]?.row[c]) || '-'}`).join(', ')}`);
    }
  }
  if (missing.length > 0 && format !== 'json') err(`seedflow: ${missing.length} of ${cells.length} cells are not computed yet (status missing); run \`${rerunCommand(file, values)}\` to compute them`);
  return EXIT.ok;
}

/** `results` of a pipeline with replicates: a row per cell over its replicates, or with `--compare` the paired comparisons. */
function replicateStatistics(table: ResultsTable, format: ResultFormat, compare: { readonly against: string | undefined } | null, file: string): number {
  if (compare !== null) {
    const rows = comparisonRows(table, compare.against);
    if ('problem' in rows) return usage(rows.problem);
    if (format === 'json') out(JSON.stringify({ pipeline: table.pipeline, columns: COMPARISON_COLUMNS, rows }));
    else if (format === 'csv') process.stdout.write(toCsv(rows.map((r) => ({ ...r })), [...COMPARISON_COLUMNS]));
    else {
      const view = comparisonText(rows);
      out(format === 'markdown' ? markdownTable(view.head, view.rows, view.numeric) : alignedTable(view.head, view.rows, view.numeric));
      out(`${format === 'markdown' ? '\n' : ''}${view.note}`);
    }
    if (!hasReplicates(table)) err('seedflow: the pipeline has no replicates, so there is nothing to pair; add "replicates: N" next to "matrix:"');
  } else if (format === 'json' || format === 'csv') {
    const { columns, rows } = statisticsRows(table);
    if (format === 'json') out(JSON.stringify({ pipeline: table.pipeline, columns, rows }));
    else process.stdout.write(toCsv(rows, columns));
  } else {
    const view = statisticsText(table);
    if (format === 'table') out(`${table.pipeline}: ${view.rows.length} cells over replicates (--per-replicate shows every replicate, --compare the paired tests)`);
    out(format === 'markdown' ? markdownTable(view.head, view.rows, view.numeric) : alignedTable(view.head, view.rows, view.numeric));
  }
  const missing = table.cells.filter((c) => c.status !== 'ok').length;
  if (missing > 0 && format !== 'json') err(`seedflow: ${missing} of ${table.cells.length} replicate cells are not computed yet; run \`seedflow run ${file}\` to compute them`);
  return EXIT.ok;
}

/** `seedflow report <pipeline> [-o report.html] [--cell CELL]`. */
export async function cmdReport(positionals: readonly string[], values: ResultsValues): Promise<number> {
  const file = onePipeline(positionals);
  if (file === undefined) return usage('seedflow report takes one pipeline file');
  const output = checkOutputFileFlag('-o', values.output ?? 'report.html');
  const store = new Store(storeRoot(values, 'read', file), { readOnly: true });
  const sets = values.set ?? [];
  const { pipeline, plan } = await preparePlan({ file, sets, store, allowDownload: false, log: (_, m) => err(m), moduleRoots: moduleRoots(values) });
  const { writeReport, CellNotFoundError } = await import('../report/report.js');
  try {
    const result = await writeReport({ pipeline, plan, store, file, sets, params: applyOverrides(pipeline.spec.params, sets).params, output, rerun: rerunCommand(file, values), ...(values.cell !== undefined ? { cell: values.cell } : {}) });
    out(`wrote ${result.html} (${result.charts} chart${result.charts === 1 ? '' : 's'})`);
    if (result.svg !== null && result.png !== null) out(`wrote ${result.svg} and ${result.png} (test accuracy against K)`);
    if (result.missing.length > 0) err(`seedflow: the report is incomplete:\n${result.missing.map((m) => `  - ${m}`).join('\n')}`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CellNotFoundError) return usage(error.message);
    throw error;
  }
}

function when(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function runCounts(run: RunRecord): string {
  const c = run.counts;
  if (Object.keys(c).length === 0) return '';
  return `${c['done'] ?? 0} ran, ${c['cached'] ?? 0} cached${c['failed'] ? `, ${c['failed']} failed` : ''}${c['interrupted'] ? `, ${c['interrupted']} interrupted` : ''}${c['skipped'] ? `, ${c['skipped']} skipped` : ''}`;
}

async function openHistory(values: ResultsValues): Promise<{ history: import('../history/history.js').RunHistory | null; root: string }> {
  const root = storeRoot(values, 'read');
  const { RunHistory } = await import('../history/history.js');
  return { history: unreadableHistory(root, () => RunHistory.open(root, { create: false })), root };
}

/**
 * Runs a read of the history, turning a damaged or foreign file (not SQLite,
 * a newer format, broken rows) into a store-file error naming it: the history
 * is a record, so the hint says it can be moved aside without losing artifacts.
 */
function unreadableHistory<T>(root: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const sqlite = typeof code === 'string' && code.startsWith('SQLITE_');
    if (!sqlite && !(error instanceof SyntaxError) && !(error instanceof TypeError) && !/newer seedflow/.test(String(error))) throw error;
    const file = join(root, 'history.sqlite');
    throw new StoreFileError(file, `cannot read the run history (${error instanceof Error ? error.message : String(error)})`,
      `move ${file} aside to start a new history; artifacts do not depend on it`);
  }
}

/** The metric `runs` shows: the best value over the run's instances. */
const RUNS_METRIC = 'accuracy';

/** The largest value of metric `name` among a run's instances, and which instance has it. */
export function bestMetric(stages: readonly { readonly id: string; readonly summary: JsonValue }[], name: string): { value: number; id: string } | null {
  let best: { value: number; id: string } | null = null;
  for (const s of stages) {
    const value = readSummary(s.summary)?.metrics[name];
    if (typeof value === 'number' && Number.isFinite(value) && (best === null || value > best.value)) best = { value, id: s.id };
  }
  return best;
}

/** `seedflow runs [pipeline]`: the recorded runs, newest first (with --json, one JSON object per line). */
export async function cmdRuns(positionals: readonly string[], values: ResultsValues): Promise<number> {
  if (positionals.length > 1) return usage('seedflow runs takes at most one pipeline name or file');
  const { history, root } = await openHistory(values);
  if (history === null) {
    if (!values.json) err(`seedflow: no run is recorded in the store ${root} yet`);
    return EXIT.ok;
  }
  try {
    const filter = positionals[0];
    const runs = unreadableHistory(root, () => history.runs(filter === undefined ? undefined : filter.endsWith('.yaml') || filter.endsWith('.yml') ? resolve(filter) : filter));
    const best = new Map(runs.map((r) => [r.id, unreadableHistory(root, () => bestMetric(history.stages(r.id), RUNS_METRIC))]));
    if (values.json) {
      // The pipeline text is long: `compare` and the history file keep it; the list names its hash.
      for (const run of runs) {
        const { provenance, ...rest } = run;
        out(JSON.stringify({ ...rest, provenance: provenance === null ? null : { ...provenance, pipelineText: undefined }, best: best.get(run.id) ?? null }));
      }
      return EXIT.ok;
    }
    if (runs.length === 0) {
      err(`seedflow: no run${filter !== undefined ? ` of ${filter}` : ''} is recorded in the store ${root}`);
      return EXIT.ok;
    }
    const rows = runs.map((r) => {
      const b = best.get(r.id);
      return [r.id, r.pipeline, when(r.started), r.ended === null ? '-' : formatDuration(r.ended - r.started), r.status === 'running' ? 'unfinished' : r.status, String(r.jobs), runCounts(r), b === null || b === undefined ? '-' : `${formatValue(b.value)} ${b.id}`, r.provenance?.git ? r.provenance.git.commit.slice(0, 8) + (r.provenance.git.dirty ? '+' : '') : '-', r.sets.join(' ')];
    });
    out(alignedTable(['RUN', 'PIPELINE', 'STARTED', 'TOOK', 'STATUS', 'JOBS', 'STAGES', `BEST ${RUNS_METRIC.toUpperCase()}`, 'COMMIT', 'SET'], rows, [false, false, false, true, false, true, false, false, false, false]));
    return EXIT.ok;
  } finally {
    history.close();
  }
}

function show(value: MetricValue | JsonValue | undefined): string {
  if (value === undefined) return '(absent)';
  return formatValue(value) || 'null';
}

function change(a: MetricValue | undefined, b: MetricValue | undefined): string {
  if (typeof a !== 'number' || typeof b !== 'number') return '';
  const d = b - a;
  return `${d > 0 ? '+' : ''}${String(Number(d.toPrecision(3)))}`;
}

/** Formats a comparison of two runs for people. */
export function formatComparison(c: Comparison): string {
  const lines: string[] = [];
  const head = (r: RunRecord): string => `${r.id} (${r.pipeline}, ${r.status === 'running' ? 'unfinished' : r.status}, ${when(r.started)})`;
  lines.push(`A: ${head(c.a)}`, `B: ${head(c.b)}`, '');
  if (c.params.length === 0) {
    lines.push('Parameters: the same');
  } else {
    lines.push('Parameters that differ:');
    lines.push(alignedTable(['  PARAM', 'A', 'B'], c.params.map((p) => [`  ${p.name}`, show(p.a), show(p.b)]), [false, false, false]));
  }
  const setsA = c.a.sets.join(' ') || '(none)';
  const setsB = c.b.sets.join(' ') || '(none)';
  if (setsA !== setsB) lines.push(`  --set: A ${setsA}; B ${setsB}`);
  if (c.notSelected.length > 0) lines.push('', `Not compared (${c.notSelected.length}, left out by --only in a run): ${c.notSelected.slice(0, 8).join(', ')}${c.notSelected.length > 8 ? ', …' : ''}`);
  if (c.onlyInA.length > 0) lines.push('', `Only in A (${c.onlyInA.length}): ${c.onlyInA.join(', ')}`);
  if (c.onlyInB.length > 0) lines.push('', `Only in B (${c.onlyInB.length}): ${c.onlyInB.join(', ')}`);
  if (c.rekeyed.length > 0) {
    // The direct changes (a param, a version) explain the rest, which only have a changed input.
    const direct = c.rekeyed.filter((id) => (c.why[id] ?? []).some((r) => !r.startsWith('input ')));
    lines.push('', `${c.rekeyed.length} stage instance${c.rekeyed.length === 1 ? '' : 's'} computed from different inputs or params${direct.length > 0 ? '; at the source:' : `: ${c.rekeyed.slice(0, 8).join(', ')}${c.rekeyed.length > 8 ? ', …' : ''}`}`);
    for (const id of direct.slice(0, 12)) lines.push(`  ${id}: ${(c.why[id] ?? []).filter((r) => !r.startsWith('input ')).join(', ')}`);
    if (direct.length > 12) lines.push(`  … and ${direct.length - 12} more`);
  }
  lines.push('');
  if (c.metrics.length === 0) {
    lines.push('Metrics: no difference (timings left out)');
  } else {
    const cells = new Set(c.metrics.map((m) => m.id));
    lines.push(`Metrics that differ (${c.metrics.length} in ${cells.size} stage instance${cells.size === 1 ? '' : 's'}; timings left out):`);
    const rows: string[][] = [];
    let previous = '';
    for (const m of c.metrics) {
      rows.push([m.id === previous ? '' : `  ${m.id}`, m.metric, show(m.a), show(m.b), change(m.a, m.b)]);
      previous = m.id;
    }
    lines.push(alignedTable(['  STAGE INSTANCE', 'METRIC', 'A', 'B', 'CHANGE'], rows, [false, false, true, true, true]));
  }
  return lines.join('\n');
}

/** `seedflow compare RUN_A RUN_B`: what differs in params and metrics. */
export async function cmdCompare(positionals: readonly string[], values: ResultsValues): Promise<number> {
  const [refA, refB, ...extra] = positionals;
  if (refA === undefined || refB === undefined || extra.length > 0) return usage('seedflow compare takes two run ids (see seedflow runs; a unique prefix, latest or latest~N also work)');
  const { history, root } = await openHistory(values);
  if (history === null) return usage(`no run is recorded in the store ${root}`);
  try {
    const a = unreadableHistory(root, () => history.findRun(refA));
    if ('problem' in a) return usage(a.problem);
    const b = unreadableHistory(root, () => history.findRun(refB));
    if ('problem' in b) return usage(b.problem);
    const { compareRuns } = await import('../history/compare.js');
    const store = new Store(root, { readOnly: true });
    const stagesA = unreadableHistory(root, () => history.stages(a.id));
    const stagesB = unreadableHistory(root, () => history.stages(b.id));
    const records = new Map<string, KeyRecord | null>();
    for (const s of [...stagesA, ...stagesB]) {
      if (records.has(s.key)) continue;
      records.set(s.key, await store.manifest(s.key).then((m) => m.record, () => null));
    }
    const comparison = compareRuns(a, stagesA, b, stagesB, (key) => records.get(key) ?? null);
    out(values.json ? JSON.stringify(comparison, (_, v: unknown) => (v === undefined ? null : v)) : formatComparison(comparison));
    return EXIT.ok;
  } finally {
    history.close();
  }
}
