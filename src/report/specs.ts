import type { TopLevelSpec } from 'vega-lite';
import type { ConfusionFile, EpochRecord } from './collect.js';

/** One grid cell's point on a chart against K. */
export interface KPoint {
  readonly k: number;
  readonly series: string;
  readonly value: number;
  readonly cell: string;
}

/** A horizontal reference line: a baseline's value. */
export interface Reference {
  readonly label: string;
  readonly value: number;
}

/** One value of a training curve. */
export interface CurvePoint {
  readonly cell: string;
  readonly epoch: number;
  readonly metric: string;
  readonly value: number;
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
 * A metric against K for each seeding strategy, K as an ordered category (so
 * 10, 20, 50, 100 are evenly spaced), with baselines as dashed horizontal lines
 * labelled at the right edge.
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
  const width = options.width ?? 520;
  const ks = [...new Set(options.points.map((p) => p.k))].sort((a, b) => a - b);
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [
    {
      data: { values: options.points.map((p) => ({ ...p })) },
      mark: { type: 'line', point: { size: 60, filled: true }, strokeWidth: 2 },
      encoding: {
        x: { field: 'k', type: 'ordinal', title: options.kTitle, sort: ks, axis: { labelAngle: 0 } },
        y: { field: 'value', type: 'quantitative', title: options.yTitle, scale: { zero: false, nice: true } },
        color: { field: 'series', type: 'nominal', title: 'strategy', ...(options.series !== undefined ? { scale: { domain: [...options.series] } } : {}) },
        tooltip: [{ field: 'cell', title: 'cell' }, { field: 'value', title: options.yTitle, format: '.4f' }],
      },
    },
  ];
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

/** Training curves: one small chart per metric (loss, accuracy and their validation twins), one line per cell. */
export function trainingSpec(points: readonly CurvePoint[]): TopLevelSpec {
  const metrics = [...new Set(points.map((p) => p.metric))];
  return {
    $schema: SCHEMA,
    title: 'Training curves',
    config: CONFIG,
    data: { values: points.map((p) => ({ ...p })) },
    facet: { field: 'metric', type: 'nominal', title: null, sort: metrics },
    columns: 2,
    spec: {
      width: 280,
      height: 170,
      mark: { type: 'line', point: { size: 20 }, strokeWidth: 1.5, opacity: 0.85 },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
        color: { field: 'cell', type: 'nominal', title: 'cell', legend: { symbolLimit: 40, labelLimit: 260 } },
        tooltip: [{ field: 'cell' }, { field: 'epoch' }, { field: 'metric' }, { field: 'value', format: '.4f' }],
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** The points of training curves from each cell's history. */
export function curvePoints(histories: readonly { readonly cell: string; readonly epochs: readonly EpochRecord[] }[]): CurvePoint[] {
  const wanted = ['loss', 'val_loss', 'accuracy', 'val_accuracy'];
  const out: CurvePoint[] = [];
  for (const { cell, epochs } of histories) {
    for (const record of epochs) {
      for (const metric of wanted) {
        const value = record[metric];
        if (typeof value === 'number' && Number.isFinite(value)) out.push({ cell, epoch: record.epoch, metric, value });
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
      x: { field: 'predicted', type: 'nominal', sort: names, title: 'predicted class', axis: { labelAngle: -40 } },
      y: { field: 'actual', type: 'nominal', sort: names, title: 'true class' },
    },
    layer: [
      {
        mark: { type: 'rect' },
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
