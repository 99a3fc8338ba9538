import type { TopLevelSpec } from 'vega-lite';
import type { ConfusionFile, EpochRecord } from './collect.js';

/** One grid cell's point on a chart against K; with replicates, their mean and its 95% interval. */
export interface KPoint {
  readonly k: number;
  readonly series: string;
  readonly value: number;
  readonly cell: string;
  readonly low?: number;
  readonly high?: number;
}

/** A horizontal reference line: a baseline's value; with replicates, a band for its 95% interval. */
export interface Reference {
  readonly label: string;
  readonly value: number;
  readonly low?: number;
  readonly high?: number;
}

/** The width of the wide charts, for a page column of about 1,130 px. */
export const WIDE = 840;

/** One value of a training curve: the panel is the strategy, the line its K. */
export interface CurvePoint {
  readonly cell: string;
  readonly panel: string;
  readonly line: string;
  readonly epoch: number;
  readonly metric: string;
  readonly value: number;
  readonly low?: number;
  readonly high?: number;
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Shared look: readable in a page and in a paper, no interactivity needed. */
const CONFIG = {
  font: 'sans-serif',
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, grid: true, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const },
};

/**
 * A metric against K for each seeding strategy, K on a log scale, with
 * baselines as dashed horizontal lines labelled at the right edge; points with
 * an interval get error bars (the `error-bars` marks) and baselines a band
 * (the `error-bands` marks).
 */
export function metricByKSpec(options: {
  readonly title: string;
  readonly yTitle: string;
  readonly kTitle: string;
  readonly points: readonly KPoint[];
  readonly references: readonly Reference[];
  /** Every series of the report, so a strategy keeps its colour from chart to chart. */
  readonly series?: readonly string[];
  readonly width?: number;
}): TopLevelSpec {
  const width = options.width ?? WIDE;
  const ks = [...new Set(options.points.map((p) => p.k))].sort((a, b) => a - b);
  const x = { field: 'k', type: 'quantitative', title: options.kTitle, scale: { type: 'log', nice: false, padding: 24 }, axis: { values: ks, format: 'd', grid: true } } as const;
  const color = { field: 'series', type: 'nominal', title: 'strategy', ...(options.series !== undefined ? { scale: { domain: [...options.series] } } : {}) } as const;
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [];
  const bands = options.references.filter((r) => r.low !== undefined && r.high !== undefined);
  if (bands.length > 0) {
    layers.push({
      data: { values: bands.map((r) => ({ ...r })) },
      name: 'error-bands',
      mark: { type: 'rect', opacity: 0.12, color: '#555' },
      encoding: { y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' }, tooltip: [{ field: 'label', title: 'baseline' }, { field: 'low', format: '.4f', title: '95% CI from' }, { field: 'high', format: '.4f', title: 'to' }] },
    });
  }
  const bars = options.points.filter((p) => p.low !== undefined && p.high !== undefined);
  if (bars.length > 0) {
    layers.push({
      data: { values: bars.map((p) => ({ ...p })) },
      name: 'error-bars',
      mark: { type: 'rule', strokeWidth: 1.5, opacity: 0.8 },
      encoding: { x, y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' }, color },
    });
  }
  layers.push(
    {
      data: { values: options.points.map((p) => ({ ...p })) },
      mark: { type: 'line', point: { size: 60, filled: true }, strokeWidth: 2 },
      encoding: {
        x,
        y: { field: 'value', type: 'quantitative', title: options.yTitle, scale: { zero: false, nice: true } },
        color,
        tooltip: [{ field: 'cell', title: 'cell' }, { field: 'value', title: options.yTitle, format: '.4f' }, ...(bars.length > 0 ? [{ field: 'low', title: '95% CI from', format: '.4f' }, { field: 'high', title: 'to', format: '.4f' }] : [])],
      },
    },
  );
  if (options.references.length > 0) {
    const refs = options.references.map((r) => ({ ...r, text: `${r.label}: ${r.value.toFixed(3)}` }));
    layers.push({
      data: { values: refs },
      mark: { type: 'rule', strokeDash: [6, 4], strokeWidth: 1.5, color: '#555' },
      encoding: { y: { field: 'value', type: 'quantitative' }, tooltip: [{ field: 'text', title: 'baseline' }] },
    });
    // Labels of baselines with (nearly) equal values would print over each other: stack them upwards.
    const all = [...options.points.map((p) => p.value), ...refs.map((r) => r.value)];
    const near = Math.max(1e-9, (Math.max(...all) - Math.min(...all)) * 0.05);
    refs.forEach((ref, i) => {
      const stack = refs.slice(0, i).filter((other) => Math.abs(other.value - ref.value) < near).length;
      layers.push({
        data: { values: [ref] },
        mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -3 - 14 * stack, color: '#333', fontSize: 11 },
        encoding: { y: { field: 'value', type: 'quantitative' }, x: { value: width - 4 }, text: { field: 'text' } },
      });
    });
  }
  return { $schema: SCHEMA, title: options.title, width, height: 300, config: CONFIG, layer: layers };
}

/** One method's point on the label-budget curve: mean labels consumed and mean test accuracy, with its 95% interval over replicates. */
export interface BudgetPoint {
  /** The true labels it consumed (mean over replicates): where it is drawn. */
  readonly labels: number;
  /** The budget it stands for (K, or a round's labels): where the axis has ticks. */
  readonly budget: number;
  readonly series: string;
  readonly value: number;
  readonly cell: string;
  readonly low?: number;
  readonly high?: number;
}

/**
 * The label-budget curve: test accuracy against the true labels consumed
 * (log scale), one line per method, each with a band for its 95% interval
 * over replicates (the `error-bands` marks) when it has one.
 */
export function budgetSpec(points: readonly BudgetPoint[], series: readonly string[]): TopLevelSpec {
  // Ticks at the budgets, not at every mean consumed: a strategy that skips small clusters draws 985 labels at K=1000.
  const labels = [...new Set(points.map((p) => Math.round(p.budget)))].sort((a, b) => a - b);
  const x = { field: 'labels', type: 'quantitative', title: 'true labels consumed', scale: { type: 'log', nice: false, padding: 24 }, axis: { values: labels, format: 'd', grid: true } } as const;
  const color = { field: 'series', type: 'nominal', title: 'method', scale: { domain: [...series] }, legend: { labelLimit: 260, symbolOpacity: 1 } } as const;
  const banded = points.filter((p) => p.low !== undefined && p.high !== undefined);
  return {
    $schema: SCHEMA,
    title: 'Test accuracy against labels consumed',
    width: WIDE,
    height: 340,
    config: CONFIG,
    layer: [
      ...(banded.length > 0 ? [{ data: { values: banded.map((p) => ({ ...p })) }, name: 'error-bands', mark: { type: 'area' as const, opacity: 0.15 }, encoding: { x, y: { field: 'low', type: 'quantitative' as const }, y2: { field: 'high' }, color } }] : []),
      {
        data: { values: points.map((p) => ({ ...p })) },
        mark: { type: 'line', point: { size: 50, filled: true }, strokeWidth: 2 },
        encoding: {
          x,
          y: { field: 'value', type: 'quantitative', title: 'test accuracy', scale: { zero: false, nice: true } },
          color,
          tooltip: [{ field: 'cell', title: 'cell' }, { field: 'labels', title: 'labels', format: '.1f' }, { field: 'value', title: 'test accuracy', format: '.4f' }, ...(banded.length > 0 ? [{ field: 'low', title: '95% CI from', format: '.4f' }, { field: 'high', title: 'to', format: '.4f' }] : [])],
        },
      },
    ],
  };
}

/**
 * Training curves, one small chart per strategy (baselines together in one),
 * one line per K coloured in K's order, and a menu choosing the metric (loss,
 * accuracy and their validation twins). With replicates each line is their
 * mean, with a band for its 95% interval (the `error-bands` marks).
 */
export function trainingSpec(points: readonly CurvePoint[]): TopLevelSpec {
  const metrics = [...new Set(points.map((p) => p.metric))];
  const first = metrics.includes('val_accuracy') ? 'val_accuracy' : metrics[0] ?? 'loss';
  const lines = [...new Set(points.map((p) => p.line))].sort((a, b) => lineOrder(a) - lineOrder(b) || a.localeCompare(b));
  const panels = [...new Set(points.map((p) => p.panel))];
  const banded = points.some((p) => p.low !== undefined);
  const encoding = {
    x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
    color: { field: 'line', type: 'nominal', title: 'K', sort: lines, scale: { scheme: 'viridis' }, legend: { symbolLimit: 40, labelLimit: 260 } },
  } as const;
  return {
    $schema: SCHEMA,
    title: 'Training curves',
    config: CONFIG,
    data: { values: points.map((p) => ({ ...p })) },
    params: [{ name: 'metric', value: first, bind: { input: 'select', options: metrics, name: 'metric ' } }],
    transform: [{ filter: 'datum.metric == metric' }],
    facet: { field: 'panel', type: 'nominal', title: null, sort: panels },
    columns: 3,
    spec: {
      width: 280,
      height: 170,
      layer: [
        ...(banded ? [{ name: 'error-bands', mark: { type: 'area' as const, opacity: 0.18 }, encoding: { ...encoding, y: { field: 'low', type: 'quantitative' as const, title: null }, y2: { field: 'high' } } }] : []),
        {
          mark: { type: 'line', point: { size: 16 }, strokeWidth: 1.5 },
          encoding: {
            ...encoding,
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
            tooltip: [{ field: 'cell' }, { field: 'epoch' }, { field: 'metric' }, { field: 'value', format: '.4f' }],
          },
        },
      ],
    },
    resolve: { scale: { y: 'shared' } },
  };
}

/** K's lines in numeric order (`K=10` before `K=100`), other lines after. */
function lineOrder(line: string): number {
  const match = /^K=(\d+(?:\.\d+)?)$/.exec(line);
  return match ? Number(match[1]) : Number.MAX_SAFE_INTEGER;
}

/** One curve to draw: the histories of a cell's replicates (one history without replicates). */
export interface CurveSource {
  readonly cell: string;
  readonly panel: string;
  readonly line: string;
  readonly histories: readonly (readonly EpochRecord[])[];
}

/** The points of training curves: per epoch and metric, the mean over the histories and, from two on, its 95% interval. */
export function curvePoints(sources: readonly CurveSource[], interval: (values: readonly number[]) => { low: number; high: number } | null): CurvePoint[] {
  const wanted = ['loss', 'val_loss', 'accuracy', 'val_accuracy'];
  const out: CurvePoint[] = [];
  for (const { cell, panel, line, histories } of sources) {
    const epochs = [...new Set(histories.flatMap((h) => h.map((r) => r.epoch)))].sort((a, b) => a - b);
    for (const epoch of epochs) {
      for (const metric of wanted) {
        const values = histories.flatMap((h) => h.filter((r) => r.epoch === epoch).map((r) => r[metric])).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
        if (values.length === 0) continue;
        const value = values.reduce((a, b) => a + b, 0) / values.length;
        const ci = values.length > 1 ? interval(values) : null;
        out.push({ cell, panel, line, epoch, metric, value, ...(ci !== null ? { low: ci.low, high: ci.high } : {}) });
      }
    }
  }
  return out;
}

/** A confusion matrix as a heat map (true class down, predicted across) with the counts written in. */
export function confusionSpec(title: string, file: ConfusionFile): TopLevelSpec {
  const names = file.confusion.map((_, i) => file.classNames?.[i] ?? String(i));
  const values: { actual: string; predicted: string; count: number; share: number }[] = [];
  let max = 1;
  file.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      values.push({ actual: names[i] ?? String(i), predicted: names[j] ?? String(j), count, share: total > 0 ? count / total : 0 });
      max = Math.max(max, count);
    });
  });
  return {
    $schema: SCHEMA,
    title,
    config: CONFIG,
    width: 380,
    height: 380,
    data: { values },
    encoding: {
      // No grid lines: they would strike through the counts.
      x: { field: 'predicted', type: 'nominal', sort: names, title: 'predicted class', axis: { labelAngle: -40, grid: false } },
      y: { field: 'actual', type: 'nominal', sort: names, title: 'true class', axis: { grid: false } },
    },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
        encoding: {
          color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues', domain: [0, max] }, title: 'images' },
          tooltip: [{ field: 'actual', title: 'true' }, { field: 'predicted' }, { field: 'count' }, { field: 'share', format: '.1%', title: 'of the true class' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: { condition: { test: `datum.count > ${max / 2}`, value: 'white' }, value: '#222' },
        },
      },
    ],
  };
}
