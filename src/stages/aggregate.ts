import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { flattenJson } from '../util/flatten.js';
import { readSummary } from './summary.js';
import type { ArtifactReader, StageSummary, StageType } from './types.js';

/** Parameters of the `aggregate` stage. */
export interface AggregateParams {
  readonly columns?: readonly string[];
}

/** One row of the results table: matrix values and metrics, flattened to dotted names. */
export type ResultRow = Record<string, string | number | boolean | null>;

/**
 * The columns of one stage's summary, named by its stage type: metrics and
 * details as `<type>.<name>` (`evaluate.accuracy`, `train.backend`), timings
 * as `<type>.<name>Seconds` (`train.trainSeconds`).
 */
export function summaryColumns(type: string, summary: StageSummary | null): ResultRow {
  if (summary === null) return {};
  const timings = Object.fromEntries(Object.entries(summary.timings).map(([name, seconds]) => [`${name}Seconds`, seconds]));
  return flattenJson({ ...summary.metrics, ...(summary.details ?? {}), ...timings }, type);
}

/**
 * The row of one gathered artifact: the matrix values of the cell, which
 * stage produced it, then every upstream stage's summary columns, named by
 * stage type (`seed-labels.labelAccuracy`) so rows from differently named
 * branches line up.
 */
export function rowOf(artifact: ArtifactReader): ResultRow {
  const row: ResultRow = { stage: artifact.stage, ...flattenJson(artifact.matrix) };
  for (const entry of Object.values(artifact.lineage)) Object.assign(row, summaryColumns(entry.type, readSummary(entry.summary)));
  return Object.assign(row, summaryColumns(artifact.type, artifact.summary));
}

function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Renders rows as CSV with the given columns. */
export function toCsv(rows: readonly ResultRow[], columns: readonly string[]): string {
  return [columns.join(','), ...rows.map((row) => columns.map((c) => csvCell(row[c])).join(','))].join('\n') + '\n';
}

/** The union of the rows' columns: matrix and stage first, then metrics in first-seen order. */
export function columnsOf(rows: readonly ResultRow[]): string[] {
  const columns: string[] = [];
  for (const row of rows) for (const c of Object.keys(row)) if (!columns.includes(c)) columns.push(c);
  return columns;
}

/** Gathers every grid cell's metrics into one table (`results.csv`, `results.json`). */
export const stage: StageType<AggregateParams> = {
  name: 'aggregate',
  version: 2,
  description: 'Gathers the metrics of every instance of its needs into one table (CSV and JSON), one row per grid cell.',
  gather: true,
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      columns: {
        type: 'array',
        items: { type: 'string' },
        description: 'Columns to keep, in order (default: all; the matrix values and stage id come first).',
      },
    },
  },
  async run(inputs, params, ctx) {
    const rows = inputs.ids.flatMap((id) => inputs.all(id)).map(rowOf);
    const columns = params.columns ? ['stage', ...params.columns.filter((c) => c !== 'stage')] : columnsOf(rows);
    await ctx.writeJson('results.json', { columns, rows });
    await writeFile(join(ctx.outDir, 'results.csv'), toCsv(rows, columns));
    return { metrics: { rows: rows.length, columns: columns.length }, timings: {} };
  },
};
