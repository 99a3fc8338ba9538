import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';

/** The parts of the bench, in the order they run; `--only` takes these names. */
export const SECTIONS = ['kmeans', 'mlp', 'features', 'pipeline', 'cache'] as const;
/** One part of the bench. */
export type Section = (typeof SECTIONS)[number];

/**
 * How a line compares with its target: PASS or MISS against the issue's
 * target, FAIL when a correctness check failed, NO PEER when the peer to
 * compare against is missing, info for lines without a target.
 */
export type Verdict = 'PASS' | 'MISS' | 'FAIL' | 'NO PEER' | 'info';

/** One line of the results table. */
export interface Row {
  /** What is measured, such as "k-means K=50, per iteration, 1 thread". */
  readonly what: string;
  /** seedflow's figure, formatted. */
  readonly ours: string;
  /** The figure compared against (a peer, or another seedflow run), formatted, or why there is none. */
  readonly against: string;
  /** ours / against, when both exist. */
  readonly ratio: number | null;
  /** The target, such as "≤ 1.5x", or empty. */
  readonly target: string;
  readonly verdict: Verdict;
  /** Peak resident memory, seedflow's then the peer's, formatted. */
  readonly memory: string;
}

/** The load average over one part's measurements. */
export interface LoadSummary {
  readonly before: number;
  readonly mean: number;
  readonly max: number;
  readonly after: number;
}

/** The outcome of one part of the bench. */
export interface SectionResult {
  readonly section: Section;
  readonly rows: readonly Row[];
  /** Details under the table: checks, parameters, per-stage times. */
  readonly notes: readonly string[];
  readonly load: LoadSummary;
}

/** PASS when the ratio is within the limit, MISS otherwise; NO PEER without a ratio. */
export function judge(ratio: number | null, limit: number): Verdict {
  if (ratio === null || !Number.isFinite(ratio)) return 'NO PEER';
  return ratio <= limit ? 'PASS' : 'MISS';
}

/** A duration in seconds, in ms below one second. */
export function seconds(s: number): string {
  if (s < 1) return `${(s * 1000).toPrecision(3)} ms`;
  return `${s < 100 ? s.toPrecision(3) : s.toFixed(0)} s`;
}

/** A ratio such as "1.23x". */
export function times(ratio: number | null): string {
  return ratio === null || !Number.isFinite(ratio) ? '—' : `${ratio.toFixed(2)}x`;
}

/** Megabytes, or a dash when unknown. */
export function megabytes(mb: number | null | undefined): string {
  return mb === null || mb === undefined ? '—' : `${Math.round(mb)} MB`;
}

/**
 * A load summary in one line. The bench itself keeps one or two cores busy;
 * a mean load above the number of cores means other work competed with it.
 */
export function describeLoad(load: LoadSummary): string {
  const busy = load.mean > availableParallelism() + 0.5 ? ' (more than the cores: other work competed, figures are skewed)' : '';
  return `load average (1 min) ${load.before.toFixed(2)} before, mean ${load.mean.toFixed(2)} and max ${load.max.toFixed(2)} while measuring, ${load.after.toFixed(2)} after${busy}`;
}

const HEADER = ['measure', 'seedflow', 'against', 'ratio', 'target', 'result', 'peak memory (seedflow / against)'] as const;

function cells(row: Row): string[] {
  return [row.what, row.ours, row.against, times(row.ratio), row.target, row.verdict, row.memory];
}

/** The rows as an aligned plain-text table for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const all = [[...HEADER], ...rows.map(cells)];
  const widths = HEADER.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd();
  return [line(all[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

/** The rows as a Markdown table. */
export function markdownTable(rows: readonly Row[]): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  return [
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${cells(r).map(escape).join(' | ')} |`),
  ].join('\n');
}

function marker(name: string, edge: 'begin' | 'end'): string {
  return `<!-- bench:${name}:${edge} -->`;
}

/** The file the first run writes: hand-written parts around the blocks the bench fills in. */
const SKELETON = `# Benchmarks

Figures written by \`npm run bench\` (\`npm run bench -- --only kmeans,mlp,features,pipeline,cache\` re-measures
some parts; \`--quick\` is a smoke run on small sizes that leaves this file alone). Everything between
\`bench:…\` markers is rewritten by the bench; the rest is kept.

## Machine

${marker('machine', 'begin')}
${marker('machine', 'end')}

## k-means

${marker('kmeans', 'begin')}
${marker('kmeans', 'end')}

## MLP training

${marker('mlp', 'begin')}
${marker('mlp', 'end')}

## Features: PCA and the kNN graph

${marker('features', 'begin')}
${marker('features', 'end')}

## Pipeline, \`--jobs 1\` against \`--jobs 2\`

${marker('pipeline', 'begin')}
${marker('pipeline', 'end')}

## Fully cached re-run against \`validate\`

${marker('cache', 'begin')}
${marker('cache', 'end')}
`;

function replaceBlock(text: string, name: string, body: string): string {
  const begin = marker(name, 'begin');
  const end = marker(name, 'end');
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  // A block removed by hand comes back at the end rather than being lost.
  if (from < 0 || to < from) return `${text.trimEnd()}\n\n${begin}\n${body}\n${end}\n`;
  return `${text.slice(0, from + begin.length)}\n${body}\n${text.slice(to)}`;
}

/** The Markdown of one part: when, the load, the table and the notes. */
export function sectionMarkdown(result: SectionResult, date: string): string {
  return [
    `Measured ${date}; ${describeLoad(result.load)}.`,
    '',
    markdownTable(result.rows),
    ...(result.notes.length > 0 ? ['', ...result.notes.map((n) => `- ${n}`)] : []),
  ].join('\n');
}

/**
 * Writes the machine block and the blocks of the parts that ran into the
 * Markdown file, keeping everything else (hand-written findings, parts that
 * did not run this time).
 */
export async function updateBenchmarksFile(file: string, machine: string, results: readonly SectionResult[], date: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text = SKELETON;
  }
  text = replaceBlock(text, 'machine', machine);
  for (const result of results) text = replaceBlock(text, result.section, sectionMarkdown(result, date));
  await writeFile(file, text);
}
