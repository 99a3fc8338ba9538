import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { Store } from '../cache/store.js';
import type { LoadedPipeline } from '../config/spec.js';
import { RunHistory, type RunRecord } from '../history/history.js';
import type { Plan } from '../plan/types.js';
import { inRound } from '../plan/planner.js';
import type { JsonValue } from '../util/json.js';
import { browserBundle, BROWSER_PACKAGES } from './bundles.js';
import { baselineLabel, bestCell, constantColumns, findCell, kColumn, seriesLabel } from './cells.js';
import { collectResults, instanceFacts, KEY_METRICS, readConfusion, readHistory, type Cell, type EpochRecord, type InstanceFacts, type ResultsTable } from './collect.js';
import { dagSvg, escapeXml } from './dag.js';
import { renderSvg, svgToPng } from './render.js';
import { hasReplicates, replicateGroups, statColumns } from './replicates.js';
import { budgetSpec, confusionSpec, curvePoints, metricByKSpec, trainingSpec, type BudgetPoint, type CurveSource, type KPoint, type Reference } from './specs.js';
import { statisticsSection } from './statistics-section.js';
import { describe } from '../stats/describe.js';

/** What `seedflow report` is asked for. */
export interface ReportOptions {
  readonly pipeline: LoadedPipeline;
  readonly plan: Plan;
  readonly store: Store;
  /** The pipeline file, as given. */
  readonly file: string;
  /** The params after `--set`, and the `--set` arguments themselves. */
  readonly params: Readonly<Record<string, JsonValue>>;
  readonly sets: readonly string[];
  /** Where to write the HTML file; the main chart's SVG and PNG go next to it. */
  readonly output: string;
  /** The cell whose confusion matrix is drawn (see findCell); the best by test accuracy when absent. */
  readonly cell?: string;
  /** The command that finishes the run, with the user's `--store` and `--set`; `seedflow run FILE` when absent. */
  readonly rerun?: string;
}

/** What `seedflow report` wrote. */
export interface ReportResult {
  readonly html: string;
  /** The main chart (accuracy against K) as SVG and PNG, or null when no cell is computed yet. */
  readonly svg: string | null;
  readonly png: string | null;
  /** Charts drawn in the page. */
  readonly charts: number;
  /** What the report says is missing, one line each (empty for a complete run). */
  readonly missing: readonly string[];
}

/** A chart of the page: a Vega-Lite spec, or a note saying why it cannot be drawn yet. */
interface Chart {
  readonly id: string;
  readonly title: string;
  readonly spec: TopLevelSpec | null;
  readonly note: string;
}

/** The user asked for a cell that does not exist. */
export class CellNotFoundError extends Error {}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function cellLabel(cell: Cell, kcol: string | undefined, table: ResultsTable): string {
  const k = kcol === undefined ? undefined : cell.row[kcol];
  return k === undefined || k === null ? baselineLabel(cell) : `${seriesLabel(cell, kcol, table.matrixColumns)}, K=${String(k)}`;
}

/** A replicated group's mean of `column` with its 95% interval when both ends are known. */
function meanWithInterval(row: Readonly<Record<string, unknown>>, column: string): { value: number; low?: number; high?: number } | undefined {
  const names = statColumns(column);
  const value = num(row[names.mean]);
  const low = num(row[names.low]);
  const high = num(row[names.high]);
  if (value === undefined) return undefined;
  return low !== undefined && high !== undefined ? { value, low, high } : { value };
}

function pointsOf(table: ResultsTable, kcol: string | undefined, column: string): KPoint[] {
  if (kcol === undefined) return [];
  if (hasReplicates(table)) {
    return replicateGroups(table).flatMap((g) => {
      const mean = meanWithInterval(g.row, column);
      return g.k !== null && mean !== undefined ? [{ k: g.k, series: g.series, cell: g.id, ...mean }] : [];
    });
  }
  // Rounds belong to the label-budget curve, not to the K grid, even when their seed set's K reaches their row.
  return table.cells.filter((cell) => !inRound(cell.matrix)).flatMap((cell) => {
    const k = num(cell.row[kcol]);
    const value = num(cell.row[column]);
    // Not only evaluated cells: a cell whose training failed still has its seed labels' accuracy.
    return k !== undefined && value !== undefined ? [{ k, value, series: seriesLabel(cell, kcol, table.matrixColumns), cell: cell.id }] : [];
  });
}

/**
 * The label-budget curve's points: each cell of the K grid and each round of
 * active learning (over replicates, their mean and interval), at the mean
 * number of true labels it consumed; baselines are left out.
 */
function budgetPoints(table: ResultsTable): BudgetPoint[] {
  return replicateGroups(table).flatMap((g) => {
    const mean = meanWithInterval(g.row, 'evaluate.accuracy');
    const labels = num(g.row['labels.trueLabelsUsed.mean']);
    return g.budget !== null && mean !== undefined && labels !== undefined ? [{ labels, budget: g.budget, series: g.series, cell: g.id, ...mean }] : [];
  });
}

function referencesOf(table: ResultsTable, kcol: string | undefined, column: string): Reference[] {
  if (hasReplicates(table)) {
    return replicateGroups(table).flatMap((g) => {
      const mean = meanWithInterval(g.row, column);
      return g.baseline && mean !== undefined ? [{ label: g.label, ...mean }] : [];
    });
  }
  return table.cells.filter((cell) => !inRound(cell.matrix)).flatMap((cell) => {
    const value = num(cell.row[column]);
    const isBaseline = kcol === undefined || num(cell.row[kcol]) === undefined;
    return isBaseline && value !== undefined ? [{ label: baselineLabel(cell), value }] : [];
  });
}

function format(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return '–';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : ms < 600_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`;
}

function htmlTable(head: readonly string[], rows: readonly (readonly string[])[], numeric: ReadonlySet<number> = new Set()): string {
  const cell = (tag: string, text: string, i: number): string => `<${tag}${numeric.has(i) ? ' class="num"' : ''}>${escapeXml(text)}</${tag}>`;
  return `<table><thead><tr>${head.map((h, i) => cell('th', h, i)).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => cell('td', c, i)).join('')}</tr>`).join('\n')}</tbody></table>`;
}

/** A run that made some of the artifacts shown, and how many. */
interface MakingRun {
  readonly run: RunRecord;
  readonly artifacts: number;
}

/**
 * The last recorded run of the pipeline and its failures, and the runs that
 * made the artifacts shown (by their creation times), when the store keeps a history.
 */
function lastRun(store: Store, pipeline: string, facts: readonly InstanceFacts[]): { readonly run: RunRecord; readonly failures: readonly { readonly id: string; readonly error: string }[]; readonly makers: readonly MakingRun[] } | null {
  let history: RunHistory | null = null;
  try {
    history = RunHistory.open(store.root, { create: false });
    const runs = history?.runs(pipeline) ?? [];
    const run = runs[0];
    if (history === null || run === undefined) return null;
    const failures = history.stages(run.id).filter((s) => s.outcome === 'failed').map((s) => ({ id: s.id, error: s.error ?? 'failed' }));
    const counts = new Map<RunRecord, number>();
    for (const fact of facts) {
      const made = fact.createdAt === undefined ? Number.NaN : Date.parse(fact.createdAt);
      const maker = runs.find((r) => r.started <= made && made <= (r.ended ?? Number.POSITIVE_INFINITY));
      if (maker !== undefined) counts.set(maker, (counts.get(maker) ?? 0) + 1);
    }
    const makers = [...counts.entries()].map(([r, artifacts]) => ({ run: r, artifacts })).sort((a, b) => b.run.started - a.run.started);
    return { run, failures, makers };
  } catch {
    // A report without the history's section is better than no report.
    return null;
  } finally {
    history?.close();
  }
}

function missingLines(plan: Plan, facts: readonly InstanceFacts[]): string[] {
  const lines: string[] = [];
  for (const stage of plan.stages) {
    const of = facts.filter((f) => f.stage === stage);
    const absent = of.filter((f) => f.state !== 'ok');
    if (absent.length === 0) continue;
    const shown = absent.slice(0, 6).map((f) => `${f.id}${f.state === 'damaged' ? ' (damaged)' : ''}`).join(', ');
    lines.push(`${stage}: ${absent.length} of ${of.length} not in the store (${shown}${absent.length > 6 ? ', …' : ''})`);
  }
  return lines;
}

/**
 * Builds the report of a planned pipeline from the store and writes it: one
 * self-contained HTML file (charts drawn in the page by the inlined Vega
 * builds, so it opens offline), plus the accuracy chart as SVG and PNG next
 * to it. Whatever is not computed yet is listed, and the charts show the rest.
 */
export async function writeReport(options: ReportOptions): Promise<ReportResult> {
  const { plan, store } = options;
  const table = await collectResults(plan, store);
  const facts = await instanceFacts(plan, store);
  const kcol = kColumn(table);
  const kTitle = kcol === undefined || kcol === 'kmeans.k' ? 'K (clusters)' : `${kcol} (clusters)`;

  let chosen: Cell | undefined;
  let chosenWhy = 'the grid cell with the best test accuracy';
  if (options.cell !== undefined) {
    const found = findCell(table, options.cell);
    if ('problem' in found) throw new CellNotFoundError(`--cell ${options.cell}: ${found.problem}`);
    chosen = found.cell;
    chosenWhy = 'the cell chosen with --cell';
  } else {
    // A baseline (all labels) usually wins outright; the interesting matrix is the best of the grid.
    const grid = table.cells.filter((c) => kcol !== undefined && num(c.row[kcol]) !== undefined);
    chosen = bestCell({ ...table, cells: grid }) ?? bestCell(table);
  }

  const charts: Chart[] = [];
  const accuracyPoints = pointsOf(table, kcol, 'evaluate.accuracy');
  const series = [...new Set(accuracyPoints.map((p) => p.series))];
  const accuracySpec = accuracyPoints.length > 0
    ? metricByKSpec({ title: 'Test accuracy against K', yTitle: 'test accuracy', kTitle, points: accuracyPoints, references: referencesOf(table, kcol, 'evaluate.accuracy'), series })
    : null;
  charts.push({ id: 'chart-accuracy', title: 'Test accuracy against K', spec: accuracySpec, note: 'No grid cell is evaluated yet.' });
  const budget = budgetPoints(table);
  charts.push({
    id: 'chart-budget',
    title: 'Test accuracy against labels consumed',
    spec: budget.length > 1 ? budgetSpec(budget, [...new Set(budget.map((p) => p.series))]) : null,
    note: 'Fewer than two cells with a label budget are evaluated yet.',
  });
  const labelPoints = pointsOf(table, kcol, 'labels.labelAccuracy');
  charts.push({
    id: 'chart-label-accuracy',
    title: 'Propagated-label accuracy against K',
    spec: labelPoints.length > 0 ? metricByKSpec({ title: 'Accuracy of the propagated labels against K', yTitle: 'label accuracy', kTitle, points: labelPoints, references: [], series }) : null,
    note: 'No cell has propagated labels yet (strategies such as centers label no training images).',
  });
  const sources: CurveSource[] = [];
  for (const group of replicateGroups(table)) {
    const histories: EpochRecord[][] = [];
    for (const cell of group.cells) {
      const epochs = cell.train === undefined ? null : await readHistory(store, cell.train.key);
      if (epochs !== null && epochs.length > 0) histories.push(epochs);
    }
    if (histories.length > 0) sources.push({ cell: group.label, panel: group.baseline ? 'baselines' : group.series, line: group.k === null ? group.label : `K=${group.k}`, histories });
  }
  const curves = curvePoints(sources, (values) => {
    const d = describe(values);
    return d.ciLow !== null && d.ciHigh !== null ? { low: d.ciLow, high: d.ciHigh } : null;
  });
  charts.push({ id: 'chart-training', title: 'Training curves', spec: curves.length > 0 ? trainingSpec(curves) : null, note: 'No model is trained yet.' });
  const confusion = chosen !== undefined && chosen.status === 'ok' ? await readConfusion(store, chosen.key) : null;
  const chosenName = chosen === undefined ? '' : `${chosen.id}${chosen.id !== cellLabel(chosen, kcol, table) ? ` (${cellLabel(chosen, kcol, table)})` : ''}`;
  charts.push({
    id: 'chart-confusion',
    title: 'Confusion matrix',
    spec: confusion !== null && chosen !== undefined ? confusionSpec(`Confusion matrix of ${cellLabel(chosen, kcol, table)} (test accuracy ${confusion.accuracy.toFixed(3)})`, confusion) : null,
    note: chosen === undefined ? 'No cell is evaluated yet.' : `${chosen.id} is not evaluated yet.`,
  });

  const missing = missingLines(plan, facts);
  const last = lastRun(store, plan.name, facts);
  if (last !== null && last.run.status !== 'success') {
    missing.unshift(`the last run (${last.run.id}) ${last.run.status === 'running' ? 'did not finish' : last.run.status === 'failed' ? 'failed' : 'was interrupted'}`);
    for (const f of last.failures) missing.push(`${f.id} failed in the last run: ${f.error}`);
  }

  await mkdir(dirname(options.output), { recursive: true });
  const base = join(dirname(options.output), basename(options.output, extname(options.output)));
  let svgFile: string | null = null;
  let pngFile: string | null = null;
  if (accuracySpec !== null) {
    const svg = await renderSvg(accuracySpec);
    svgFile = `${base}-accuracy.svg`;
    pngFile = `${base}-accuracy.png`;
    await writeFile(svgFile, svg);
    await writeFile(pngFile, await svgToPng(svg));
  }

  const html = await pageHtml({ options, table, facts, charts, missing, chosenWhy, chosenName, last: last?.run ?? null, makers: last?.makers ?? [], kcol });
  await writeFile(options.output, html);
  return { html: options.output, svg: svgFile, png: pngFile, charts: charts.filter((c) => c.spec !== null).length, missing };
}

interface PageParts {
  readonly options: ReportOptions;
  readonly table: ResultsTable;
  readonly facts: readonly InstanceFacts[];
  readonly charts: readonly Chart[];
  readonly missing: readonly string[];
  readonly chosenWhy: string;
  readonly chosenName: string;
  readonly last: RunRecord | null;
  readonly makers: readonly MakingRun[];
  readonly kcol: string | undefined;
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1150px; padding: 16px 24px 48px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; font-size: 13px; }
.banner { padding: 10px 14px; border-radius: 6px; margin: 16px 0; font-size: 14px; }
.banner.ok { background: #e3f4e1; border: 1px solid #5a9e55; }
.banner.incomplete { background: #fff2cc; border: 1px solid #d6a400; }
.banner ul { margin: 6px 0 0; padding-left: 20px; }
.chart { margin: 8px 0; min-height: 40px; }
.note { color: #666; font-style: italic; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 10px; text-align: left; white-space: nowrap; }
th { background: #f6f6f6; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.missing td { color: #999; }
tr.significant td { background: #fff4d6; font-weight: 600; }
h3 { font-size: 15px; margin-top: 20px; }
.scroll { overflow-x: auto; }
.dag-box { overflow-x: auto; border: 1px solid #eee; border-radius: 6px; padding: 4px; }
code { background: #f3f3f3; padding: 1px 4px; border-radius: 3px; }
`;

const BOOT = `
(function () {
  var specs = JSON.parse(document.getElementById('seedflow-specs').textContent);
  window.seedflowCharts = Promise.all(Object.keys(specs).map(function (id) {
    var box = document.getElementById(id);
    return vegaEmbed(box, specs[id], { renderer: 'svg', actions: false }).then(function () {
      box.setAttribute('data-drawn', 'yes');
    }, function (error) {
      box.setAttribute('data-drawn', 'no');
      box.textContent = 'This chart could not be drawn: ' + error.message;
      console.error('seedflow chart ' + id + ': ' + error.message);
    });
  }));
})();
`;

async function pageHtml(parts: PageParts): Promise<string> {
  const { options, table, facts, charts, missing, last, kcol } = parts;
  const { plan, pipeline } = options;
  const title = `${plan.name}: seedflow report`;
  const computed = table.cells.filter((c) => c.status === 'ok').length;
  const banner = missing.length === 0
    ? `<div class="banner ok">Complete: all ${facts.length} stage instances and ${table.cells.length} cells are in the store.</div>`
    : `<div class="banner incomplete" id="missing"><strong>Incomplete:</strong> ${facts.filter((f) => f.state !== 'ok').length} of ${facts.length} stage instances and ${table.cells.length - computed} of ${table.cells.length} cells are not in the store. The charts show what is computed. Run <code>${escapeXml(options.rerun ?? `seedflow run ${options.file}`)}</code> to finish.<ul>${missing.map((m) => `<li>${escapeXml(m)}</li>`).join('')}</ul></div>`;

  const sections: string[] = [];
  for (const chart of charts) {
    const heading = chart.id === 'chart-confusion' && parts.chosenName !== '' ? `${chart.title}: ${escapeXml(parts.chosenName)}, ${parts.chosenWhy}` : escapeXml(chart.title);
    sections.push(`<h2>${heading}</h2>`);
    sections.push(chart.spec === null ? `<p class="note" id="${chart.id}-missing">${escapeXml(chart.note)}</p>` : `<div class="chart" id="${chart.id}"></div>`);
  }

  sections.push('<h2>Results</h2>');
  if (hasReplicates(table)) {
    sections.push(statisticsSection(table));
  } else {
    // The test accuracy next to the cell's name, where it is seen without scrolling; columns equal in every cell left out.
    const ordered = ['stage', 'status', ...table.matrixColumns, 'evaluate.accuracy', 'evaluate.loss', ...KEY_METRICS.filter((m) => m !== 'evaluate.accuracy' && m !== 'evaluate.loss')];
    const constant = constantColumns(table.cells.map((c) => c.row), ordered);
    const columns = ordered.filter((c) => !constant.has(c) || c === 'evaluate.accuracy');
    const numeric = new Set(columns.map((c, i) => (c.includes('.') && !table.matrixColumns.includes(c) ? i : -1)).filter((i) => i >= 0));
    const resultRows = table.cells.map((c) => columns.map((col) => format(c.row[col])));
    sections.push(`<div class="scroll">${htmlTable(columns, resultRows, numeric)}</div>`);
    if (constant.size > 0) sections.push(`<p class="meta">Same in every cell: ${[...constant].filter((c) => !columns.includes(c)).map((c) => `${escapeXml(c)} = ${escapeXml(format(table.cells[0]?.row[c]))}`).join(', ')}.</p>`);
  }

  const counts = new Map<string, { instances: number; computed: number }>();
  for (const f of facts) {
    const c = counts.get(f.stage) ?? { instances: 0, computed: 0 };
    c.instances++;
    if (f.state === 'ok') c.computed++;
    counts.set(f.stage, c);
  }
  const dag = dagSvg(plan.stages.map((id) => ({
    id,
    uses: pipeline.spec.stages[id]?.uses ?? '',
    needs: pipeline.spec.stages[id]?.needs ?? [],
    axes: plan.axes[id] ?? [],
    instances: counts.get(id)?.instances ?? 0,
    computed: counts.get(id)?.computed ?? 0,
  })));
  sections.push('<h2>Pipeline</h2>');
  sections.push(`<div class="dag-box" id="dag">${dag}</div>`);

  const setNames = new Set(options.sets.map((s) => s.slice(0, s.indexOf('='))));
  const paramRows = Object.entries(options.params).map(([name, value]) => [name, format(value), setNames.has(name) ? `--set (file: ${format(pipeline.spec.params[name])})` : 'pipeline file']);
  const axisRows = Object.entries(pipeline.spec.matrix.axes).map(([name, values]) => [name, values.map((v) => format(v)).join(', ')]);
  sections.push('<h2>Parameters</h2>');
  sections.push(paramRows.length > 0 ? htmlTable(['param', 'value', 'from'], paramRows) : '<p class="note">The pipeline has no params.</p>');
  const seeds = pipeline.spec.replicates;
  if (seeds !== undefined) axisRows.push(['replicates', `${seeds.length}, seeds ${seeds.join(', ')}${options.sets.some((s) => s.startsWith('replicates=')) ? ' (--set)' : ''}`]);
  if (axisRows.length > 0) sections.push(htmlTable(['matrix axis', 'values'], axisRows));

  const timingRows = plan.stages.map((id) => {
    const of = facts.filter((f) => f.stage === id && f.durationMs !== undefined).map((f) => f.durationMs ?? 0);
    const total = of.reduce((a, b) => a + b, 0);
    return [id, `${of.length}/${counts.get(id)?.instances ?? 0}`, of.length ? seconds(total) : '–', of.length ? seconds(total / of.length) : '–', of.length ? seconds(Math.max(...of)) : '–'];
  });
  const allTime = facts.reduce((a, f) => a + (f.durationMs ?? 0), 0);
  sections.push('<h2>Timings</h2>');
  const runText = (r: RunRecord): string => `<code>${escapeXml(r.id)}</code>, ${escapeXml(r.status)}, started ${escapeXml(new Date(r.started).toISOString())}${r.ended !== null ? `, ${seconds(r.ended - r.started)} wall time` : ''}, ${r.jobs} job${r.jobs === 1 ? '' : 's'}`;
  const made = parts.makers.length > 0 ? ` The artifacts shown were made by ${parts.makers.map((m) => `run ${runText(m.run)} (${m.artifacts} artifact${m.artifacts === 1 ? '' : 's'})`).join('; ')}.` : '';
  const lastNote = last !== null && !parts.makers.some((m) => m.run.id === last.id) ? ` The last run, ${runText(last)}, made none of them (its work was cached).` : '';
  sections.push(`<p class="meta" id="timings-runs">Compute time of the artifacts in the store (as recorded when each was made): ${seconds(allTime)} in all.${made}${lastNote}</p>`);
  sections.push(htmlTable(['stage', 'in store', 'total', 'mean', 'longest'], timingRows, new Set([1, 2, 3, 4])));

  const bundles = await Promise.all(BROWSER_PACKAGES.map((name) => browserBundle(name)));
  // In the page each chart sits under a heading saying the same; the title stays in the SVG and PNG files.
  const specs = Object.fromEntries(charts.flatMap((c) => (c.spec === null ? [] : [[c.id, { ...c.spec, title: undefined }]])));
  // `<` escaped so no string in the data can end the script element.
  const specJson = JSON.stringify(specs).replace(/</g, '\\u003c');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(title)}</title>`,
    `<style>${STYLE}</style>`,
    ...bundles.map((b) => `<script data-package="${b.name}@${b.version}">${b.code}</script>`),
    '</head><body>',
    `<h1>${escapeXml(plan.name)}</h1>`,
    pipeline.spec.description !== undefined ? `<p>${escapeXml(pipeline.spec.description)}</p>` : '',
    `<p class="meta">Pipeline <code>${escapeXml(options.file)}</code>, store <code>${escapeXml(options.store.root)}</code>, ${table.cells.length} cells${kcol !== undefined ? `, K from the column ${escapeXml(kcol)}` : ''}. Report made ${escapeXml(new Date().toISOString())}.</p>`,
    banner,
    ...sections,
    `<script type="application/json" id="seedflow-specs">${specJson}</script>`,
    `<script>${BOOT}</script>`,
    '</body></html>',
  ].join('\n');
}
