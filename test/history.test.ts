import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareRuns } from '../src/history/compare.js';
import { RunHistory, type StageRecord } from '../src/history/history.js';
import { tempDir } from './support/stage-harness.js';

const summary = (metrics: Record<string, number | null>, timings: Record<string, number> = {}, details?: Record<string, string>): StageRecord['summary'] =>
  ({ metrics, timings, ...(details !== undefined ? { details } : {}) });

function stage(runId: string, seq: number, id: string, key: string, summary: StageRecord['summary']): StageRecord {
  return { runId, seq, id, stage: id.replace(/\[.*$/, ''), matrix: {}, key, outcome: 'executed', durationMs: 10, summary, error: null, peakRssMb: null, worker: null };
}

describe('run history', () => {
  it('finds runs by id, unique prefix, latest and latest~N, newest first', async () => {
    const history = RunHistory.open(await tempDir(), { create: true });
    assert.ok(history !== null);
    try {
      for (const [id, started] of [['20260101-100000-1', 1000], ['20260101-110000-2', 2000], ['20260102-090000-3', 3000]] as const) {
        history.startRun({ id, pipeline: 'grid', file: '/p/grid.yaml', params: {}, sets: [], options: {}, started, jobs: 2 });
      }
      history.endRun('20260101-100000-1', 'success', 1500, { done: 3 });
      assert.deepEqual(history.runs().map((r) => r.id), ['20260102-090000-3', '20260101-110000-2', '20260101-100000-1']);
      const byRef = (ref: string): string => {
        const found = history.findRun(ref);
        return 'problem' in found ? found.problem : found.id;
      };
      assert.equal(byRef('latest'), '20260102-090000-3');
      assert.equal(byRef('latest~2'), '20260101-100000-1');
      assert.equal(byRef('20260102'), '20260102-090000-3');
      assert.match(byRef('20260101'), /matches 2 runs/);
      assert.match(byRef('latest~5'), /fewer than 6 runs/);
      const first = history.findRun('20260101-100000-1');
      assert.ok(!('problem' in first) && first.status === 'success' && first.counts['done'] === 3);
      assert.equal(history.runs('/p/grid.yaml').length, 3);
      assert.equal(history.runs('other').length, 0);
    } finally {
      history.close();
    }
  });

  it('compare reports changed params, instances of one run only, and changed metrics but not timings', () => {
    const base = { pipeline: 'grid', file: '/p/grid.yaml', sets: [], options: {}, started: 0, ended: 1, status: 'success' as const, jobs: 2, counts: {} };
    const a = { ...base, id: 'a', params: { epochs: 20, seed: 1 } };
    const b = { ...base, id: 'b', params: { epochs: 5, seed: 1 }, sets: ['epochs=5'] };
    const comparison = compareRuns(
      a,
      [
        stage('a', 0, 'cluster[k=10]', 'c1', summary({ k: 10 }, { total: 3.1 })),
        stage('a', 1, 'evaluate[k=10]', 'e1', summary({ accuracy: 0.8, loss: 0.5, seconds: 1 }, {}, { split: 'test' })),
        stage('a', 2, 'evaluate[k=50]', 'e2', summary({ accuracy: 0.9 })),
      ],
      b,
      [
        stage('b', 0, 'cluster[k=10]', 'c1', summary({ k: 10 }, { total: 2.7 })),
        stage('b', 1, 'evaluate[k=10]', 'e3', summary({ accuracy: 0.75, loss: 0.5, seconds: 2 }, { fit: 9 }, { split: 'validation' })),
        stage('b', 2, 'evaluate[k=20]', 'e4', summary({ accuracy: 0.7 })),
      ],
    );
    assert.deepEqual(comparison.params, [{ name: 'epochs', a: 20, b: 5 }]);
    // A metric is one by its place in the summary, not by its name: "seconds" here is a metric.
    assert.deepEqual(comparison.metrics, [
      { id: 'evaluate[k=10]', metric: 'accuracy', a: 0.8, b: 0.75 },
      { id: 'evaluate[k=10]', metric: 'seconds', a: 1, b: 2 },
      { id: 'evaluate[k=10]', metric: 'split', a: 'test', b: 'validation' },
    ]);
    assert.deepEqual(comparison.onlyInA, ['evaluate[k=50]']);
    assert.deepEqual(comparison.onlyInB, ['evaluate[k=20]']);
    assert.deepEqual(comparison.rekeyed, ['evaluate[k=10]']);
  });
});
