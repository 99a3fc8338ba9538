import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cell, ResultsTable } from '../src/report/collect.js';
import { compareGroups, replicateGroups } from '../src/report/replicates.js';

/** A computed cell of a hand-made results table. */
function cell(stage: string, matrix: Record<string, number>, labels: number, accuracy: number, clustered = true): Cell {
  const id = `${stage}[${Object.entries(matrix).map(([a, v]) => `${a}=${v}`).join(' ')}]`;
  const row = { stage, status: 'ok', ...matrix, ...(clustered ? { 'kmeans.k': 10 } : { 'seed-labels.strategy': 'random', 'labels.samples': labels }), 'labels.trueLabelsUsed': labels, 'evaluate.accuracy': accuracy };
  return { id, stage, matrix, key: id, status: 'ok', row };
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

  it('a round whose replicates consumed different labels stands for no budget and is paired with nothing, not even a random baseline of its mean', () => {
    const base = table([19, 21]);
    const random = [1, 2].map((replicate) => cell('random', { replicate }, 20, 0.55, false));
    const groups = replicateGroups({ ...base, cells: [...base.cells, ...random] });
    assert.equal(groups.find((g) => g.label.includes('20 labels'))?.budget, null);
    assert.ok(groups.some((g) => g.baseline && g.stage === 'random'));
    assert.deepEqual(compareGroups(groups).map((c) => `${c.kind}: ${c.a} | ${c.b}`), ['budget: evaluate, K=10 | active 10, 10 labels']);
    // With 20 labels in each replicate, the round meets the random baseline that drew as many.
    const even = replicateGroups({ ...table([20, 20]), cells: [...table([20, 20]).cells, ...random] });
    assert.ok(compareGroups(even).some((c) => c.kind === 'random' && c.a === 'active 10, 20 labels'));
  });

  it('two series whose cells are the same artifacts (twins) are not compared: one result is not two', () => {
    const base = table([20, 20]);
    const twin = base.cells.filter((c) => c.matrix['round'] === 1).map((c) => ({ ...c, id: `${c.id}-twin`, stage: 'other' }));
    const groups = replicateGroups({ ...base, cells: [...base.cells, ...twin] });
    const pairs = compareGroups(groups).map((c) => `${c.a} | ${c.b}`);
    assert.ok(pairs.includes('evaluate, K=10 | other 10, 10 labels'), pairs.join('\n'));
    assert.ok(!pairs.includes('active 10, 10 labels | other 10, 10 labels'), pairs.join('\n'));
  });
});
