import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cell, ResultsTable } from '../src/report/collect.js';
import { compareGroups, replicateGroups } from '../src/report/replicates.js';

/** A computed cell of a hand-made results table. */
function cell(stage: string, matrix: Record<string, number>, labels: number, accuracy: number): Cell {
  const id = `${stage}[${Object.entries(matrix).map(([a, v]) => `${a}=${v}`).join(' ')}]`;
  return { id, stage, matrix, key: id, status: 'ok', row: { stage, status: 'ok', ...matrix, 'kmeans.k': 10, 'labels.trueLabelsUsed': labels, 'evaluate.accuracy': accuracy } };
}

/**
 * Representatives at K = 10 and active learning from them: the rounds'
 * rows carry their seed set's K (k and kmeans.k), as a pipeline whose
 * active-learning stage starts from the K grid's seed sets gives them.
 */
function table(roundTwoLabels: readonly [number, number]): ResultsTable {
  const cells = [1, 2].flatMap((replicate) => [
    cell('evaluate', { k: 10, replicate }, 10, 0.5 + replicate / 100),
    cell('active', { k: 10, replicate, round: 1 }, 10, 0.52 + replicate / 50),
    cell('active', { k: 10, replicate, round: 2 }, roundTwoLabels[replicate - 1] ?? 0, 0.6 + replicate / 30),
  ]);
  return { pipeline: 'p', cells, columns: ['stage', 'status', 'k', 'replicate', 'round', 'kmeans.k', 'labels.trueLabelsUsed', 'evaluate.accuracy'], matrixColumns: ['k', 'replicate', 'round'] };
}

describe('label-budget groups', () => {
  it('a round whose row carries its seed set\'s K is still a round: drawn and paired at the labels it consumed, never with its own series\' rounds', () => {
    const groups = replicateGroups(table([20, 20]));
    const rounds = groups.filter((g) => g.stage === 'active');
    assert.deepEqual(rounds.map((g) => [g.k, g.budget, g.label]), [[null, 10, 'active 10, 10 labels'], [null, 20, 'active 10, 20 labels']]);
    const pairs = compareGroups(groups).map((c) => `${c.kind}: ${c.a} | ${c.b} | ${String(c.k)}`);
    assert.deepEqual(pairs, ['budget: evaluate, K=10 | active 10, 10 labels | 10']);
  });

  it('a round whose replicates consumed different labels stands for no budget and is paired with nothing', () => {
    const groups = replicateGroups(table([20, 19]));
    assert.equal(groups.find((g) => g.label.includes('19.5 labels'))?.budget, null);
    assert.deepEqual(compareGroups(groups).map((c) => c.b), ['active 10, 10 labels']);
  });
});
