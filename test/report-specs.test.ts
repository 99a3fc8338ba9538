import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { confusionSpec, curvePoints, metricByKSpec, trainingSpec, WIDE } from '../src/report/specs.js';

type Json = Record<string, unknown>;

function layers(spec: unknown): Json[] {
  return ((spec as Json)['layer'] ?? ((spec as Json)['spec'] as Json)['layer']) as Json[];
}

describe('report chart specs', () => {
  const points = [10, 100, 20].map((k) => ({ k, series: 'full', value: 0.5 + k / 1000, cell: `evaluate[k=${k}]`, low: 0.4, high: 0.6 }));

  it('K is drawn on a log scale with a tick at each K, and the chart takes the page\'s width', () => {
    const spec = metricByKSpec({ title: 't', yTitle: 'y', kTitle: 'K', points, references: [] }) as unknown as Json;
    assert.equal(spec['width'], WIDE);
    assert.ok(WIDE >= 800 && WIDE <= 1000);
    const x = ((layers(spec).at(-1) as Json)['encoding'] as Json)['x'] as Json;
    assert.equal(x['type'], 'quantitative');
    assert.equal((x['scale'] as Json)['type'], 'log');
    assert.deepEqual((x['axis'] as Json)['values'], [10, 20, 100]);
  });

  it('points with an interval get an error-bar layer and baselines with one a band; without intervals there are none', () => {
    const withCi = metricByKSpec({ title: 't', yTitle: 'y', kTitle: 'K', points, references: [{ label: 'random', value: 0.3, low: 0.25, high: 0.35 }] });
    assert.deepEqual(layers(withCi).map((l) => l['name']).filter((n) => n !== undefined), ['error-bands', 'error-bars']);
    const plain = metricByKSpec({ title: 't', yTitle: 'y', kTitle: 'K', points: points.map(({ low: _l, high: _h, ...p }) => p), references: [{ label: 'random', value: 0.3 }] });
    assert.deepEqual(layers(plain).map((l) => l['name']).filter((n) => n !== undefined), []);
  });

  it('training curves are faceted by strategy, coloured by K in numeric order, with a metric menu and bands over replicates', () => {
    const history = (shift: number): { epoch: number; loss: number; val_accuracy: number }[] => [1, 2].map((epoch) => ({ epoch, loss: 1 / epoch + shift, val_accuracy: 0.5 + shift }));
    const curves = curvePoints(['K=100', 'K=20', 'K=10'].map((line) => ({ cell: `full, ${line}`, panel: 'full', line, histories: [history(0), history(0.1)] })), (values) => ({ low: Math.min(...values), high: Math.max(...values) }));
    assert.equal(curves.length, 3 * 2 * 2);
    const first = curves.find((p) => p.line === 'K=10' && p.epoch === 1 && p.metric === 'loss');
    assert.ok(first !== undefined);
    assert.ok(Math.abs(first.value - 1.05) < 1e-12);
    assert.equal(first.low, 1);
    const spec = trainingSpec(curves) as unknown as Json;
    assert.equal((spec['facet'] as Json)['field'], 'panel');
    const color = (((layers(spec).at(-1) as Json)['encoding'] as Json)['color']) as Json;
    assert.deepEqual(color['sort'], ['K=10', 'K=20', 'K=100']);
    const param = (spec['params'] as Json[])[0] as Json;
    assert.equal(param['value'], 'val_accuracy');
    assert.deepEqual((param['bind'] as Json)['options'], ['loss', 'val_accuracy']);
    assert.equal(layers(spec)[0]?.['name'], 'error-bands');
  });

  it('the confusion matrix draws no grid lines through its counts', () => {
    const spec = confusionSpec('c', { accuracy: 0.5, confusion: [[1, 2], [3, 4]] }) as unknown as Json;
    const encoding = spec['encoding'] as Json;
    assert.equal(((encoding['x'] as Json)['axis'] as Json)['grid'], false);
    assert.equal(((encoding['y'] as Json)['axis'] as Json)['grid'], false);
  });
});
