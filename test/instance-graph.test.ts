import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InstanceGraph, type GraphNode } from '../src/plan/instance-graph.js';

const node = (id: string, needs: Record<string, readonly string[]> = {}, gather = false): GraphNode => ({ id, needs, type: { gather } });

// A grid's shape: data → split → one cluster per K → a training per K (which also needs split)
// → its evaluation → one gathering aggregate; plus a branch that trains on all labels.
const instances: readonly GraphNode[] = [
  node('data'),
  node('split', { data: ['data'] }),
  node('cluster[k=10]', { split: ['split'] }),
  node('cluster[k=20]', { split: ['split'] }),
  node('train[k=10]', { split: ['split'], cluster: ['cluster[k=10]'] }),
  node('train[k=20]', { split: ['split'], cluster: ['cluster[k=20]'] }),
  node('train-all', { split: ['split'] }),
  node('evaluate[k=10]', { train: ['train[k=10]'], split: ['split'] }),
  node('evaluate[k=20]', { train: ['train[k=20]'], split: ['split'] }),
  node('evaluate-all', { train: ['train-all'], split: ['split'] }),
  node('results', { evaluate: ['evaluate[k=10]', 'evaluate[k=20]'], 'evaluate-all': ['evaluate-all'] }, true),
];
const graph = new InstanceGraph(instances);

describe('the instance graph', () => {
  it('finds a node by its id, and nothing for an unknown id', () => {
    assert.equal(graph.node('split'), instances[1]);
    assert.equal(graph.node('nope'), undefined);
  });

  it('lists the needs of an instance flat, in order', () => {
    const rows: readonly [string, readonly string[]][] = [
      ['data', []],
      ['train[k=10]', ['split', 'cluster[k=10]']],
      ['results', ['evaluate[k=10]', 'evaluate[k=20]', 'evaluate-all']],
      ['unknown', []],
    ];
    for (const [id, needs] of rows) assert.deepEqual(graph.needsOf(id), needs, id);
  });

  it('lists an instance needed under two names once', () => {
    const twice = new InstanceGraph([node('a'), node('b', { left: ['a'], right: ['a'] })]);
    assert.deepEqual(twice.needsOf('b'), ['a']);
    assert.deepEqual(twice.dependents('a').map((d) => d.id), ['b']);
  });

  it('lists the dependents of an instance in plan order', () => {
    const rows: readonly [string, readonly string[]][] = [
      ['split', ['cluster[k=10]', 'cluster[k=20]', 'train[k=10]', 'train[k=20]', 'train-all', 'evaluate[k=10]', 'evaluate[k=20]', 'evaluate-all']],
      ['cluster[k=20]', ['train[k=20]']],
      ['evaluate-all', ['results']],
      ['results', []],
    ];
    for (const [id, dependents] of rows) assert.deepEqual(graph.dependents(id).map((d) => d.id), dependents, id);
  });

  it('walks upstream from the given ids, nearest first', () => {
    assert.deepEqual([...graph.upstream(['evaluate[k=10]'])], ['evaluate[k=10]', 'train[k=10]', 'split', 'cluster[k=10]', 'data']);
    assert.deepEqual([...graph.upstream(['data'])], ['data']);
    assert.deepEqual([...graph.upstream([])], []);
    assert.deepEqual(new Set(graph.upstream(['train[k=20]', 'train-all'])), new Set(['train[k=20]', 'train-all', 'split', 'cluster[k=20]', 'data']));
  });

  it('walks downstream from the given ids, nearest first', () => {
    assert.deepEqual([...graph.downstream(['cluster[k=10]'])], ['cluster[k=10]', 'train[k=10]', 'evaluate[k=10]', 'results']);
    assert.deepEqual([...graph.downstream(['results'])], ['results']);
    assert.equal(graph.downstream(['data']).size, instances.length);
  });

  it('gives an instance only gathering stages need, or none, the top priority, and the others their longest chain after them', () => {
    const top = Number.MAX_SAFE_INTEGER;
    assert.deepEqual(Object.fromEntries(graph.priority()), {
      'results': top,
      'evaluate[k=10]': top,
      'evaluate[k=20]': top,
      'evaluate-all': top,
      'train[k=10]': 3,
      'train[k=20]': 3,
      'train-all': 3,
      'cluster[k=10]': 4,
      'cluster[k=20]': 4,
      'split': 5,
      'data': 6,
    });
  });

  it('counts a chain through a gathering stage when a non-gathering stage also needs the instance', () => {
    const mixed = new InstanceGraph([node('a'), node('gather', { a: ['a'] }, true), node('after', { gather: ['gather'] }), node('b', { a: ['a'] })]);
    assert.deepEqual(Object.fromEntries(mixed.priority()), { after: Number.MAX_SAFE_INTEGER, b: Number.MAX_SAFE_INTEGER, gather: 2, a: 3 });
  });
});
