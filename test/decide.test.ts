import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ArtifactState, IndexEntry } from '../src/cache/store.js';
import { assignKeys } from '../src/plan/planner.js';
import { decide, type InstanceState, type Selection } from '../src/plan/states.js';
import type { Expansion, Plan, StageInstance, StageTypeInfo } from '../src/plan/types.js';
import type { JsonObject } from '../src/util/json.js';

const type = (name: string): StageTypeInfo => ({
  name, version: 1, schema: {}, gather: false, heavy: false, numeric: false, readsFiles: false, untracked: [], requires: [], role: null, source: { kind: 'builtin', name },
});

/** data → cluster[k=10] → train[k=10] → evaluate[k=10], and data → train-all. */
function planWith(trainParams: JsonObject): Plan {
  const instances: StageInstance[] = [
    { id: 'data', stage: 'data', type: type('dataset'), matrix: {}, params: { name: 'fashion-mnist' }, needs: {} },
    { id: 'cluster[k=10]', stage: 'cluster', type: type('kmeans'), matrix: { k: 10 }, params: { k: 10 }, needs: { data: ['data'] } },
    { id: 'train[k=10]', stage: 'train', type: type('train'), matrix: { k: 10 }, params: trainParams, needs: { data: ['data'], cluster: ['cluster[k=10]'] } },
    { id: 'evaluate[k=10]', stage: 'evaluate', type: type('evaluate'), matrix: { k: 10 }, params: {}, needs: { train: ['train[k=10]'] } },
    { id: 'train-all', stage: 'train-all', type: type('train'), matrix: {}, params: { epochs: 20, labels: 'all' }, needs: { data: ['data'] } },
  ];
  const expansion: Expansion = { name: 'grid', params: {}, stages: ['data', 'cluster', 'train', 'evaluate', 'train-all'], axes: {}, rounds: {}, instances };
  return assignKeys(expansion, { backend: 'none', files: new Map() });
}

const before = planWith({ epochs: 20 });
const plan = planWith({ epochs: 5 });
const keyOf = (p: Plan, id: string): string => p.instances.find((i) => i.id === id)?.key ?? '';
const entries = (p: Plan): Map<string, IndexEntry> => new Map(p.instances.map((i) => [i.id, { key: i.key, record: i.record }]));
/** Every instance of `plan` in the store, intact. */
const allOk = (): Map<string, ArtifactState> => new Map(plan.instances.map((i) => [i.key, { state: 'ok' }]));
const none: Selection = { force: [], only: [] };
const cached: InstanceState = { status: 'cached' };
const run = (...reasons: string[]): InstanceState => ({ status: 'run', reasons });
const skipped: InstanceState = { status: 'not-selected', reasons: ['not selected by --only'] };

interface Row {
  readonly name: string;
  readonly artifacts: ReadonlyMap<string, ArtifactState>;
  readonly previous: ReadonlyMap<string, IndexEntry>;
  readonly selection: Selection;
  readonly expected: Readonly<Record<string, InstanceState>>;
}

const rows: readonly Row[] = [
  {
    name: 'a store that never built the pipeline runs everything as new',
    artifacts: new Map(),
    previous: new Map(),
    selection: none,
    expected: { 'data': run('new'), 'cluster[k=10]': run('new'), 'train[k=10]': run('new'), 'evaluate[k=10]': run('new'), 'train-all': run('new') },
  },
  {
    name: 'every artifact intact means everything is cached',
    artifacts: allOk(),
    previous: entries(plan),
    selection: none,
    expected: { 'data': cached, 'cluster[k=10]': cached, 'train[k=10]': cached, 'evaluate[k=10]': cached, 'train-all': cached },
  },
  {
    name: 'a damaged artifact runs again with the damage as its reason, its dependents stay cached',
    artifacts: new Map([...allOk(), [keyOf(plan, 'cluster[k=10]'), { state: 'damaged', reason: 'centers.npy: checksum mismatch' }]]),
    previous: entries(plan),
    selection: none,
    expected: { 'data': cached, 'cluster[k=10]': run('artifact damaged (centers.npy: checksum mismatch)'), 'train[k=10]': cached, 'evaluate[k=10]': cached, 'train-all': cached },
  },
  {
    name: 'an artifact built before with the same key but gone from the store is missing',
    artifacts: new Map([...allOk()].filter(([key]) => key !== keyOf(plan, 'train-all'))),
    previous: entries(plan),
    selection: none,
    expected: { 'data': cached, 'cluster[k=10]': cached, 'train[k=10]': cached, 'evaluate[k=10]': cached, 'train-all': run('artifact missing from the store') },
  },
  {
    name: 'a changed param names the param and both values, and its dependents name the input',
    artifacts: new Map([...allOk()].filter(([key]) => key !== keyOf(plan, 'train[k=10]') && key !== keyOf(plan, 'evaluate[k=10]'))),
    previous: entries(before),
    selection: none,
    expected: {
      'data': cached,
      'cluster[k=10]': cached,
      'train[k=10]': run('param epochs changed (20 → 5)'),
      'evaluate[k=10]': run('input train[k=10] changed'),
      'train-all': cached,
    },
  },
  {
    name: 'forcing a stage runs it and everything downstream, whatever the store holds',
    artifacts: allOk(),
    previous: entries(plan),
    selection: { force: ['cluster'], only: [] },
    expected: { 'data': cached, 'cluster[k=10]': run('forced'), 'train[k=10]': run('forced upstream (cluster)'), 'evaluate[k=10]': run('forced upstream (cluster)'), 'train-all': cached },
  },
  {
    name: 'a forced stage downstream of another forced stage says forced, not forced upstream',
    artifacts: allOk(),
    previous: entries(plan),
    selection: { force: ['data', 'train'], only: [] },
    expected: { 'data': run('forced'), 'cluster[k=10]': run('forced upstream (data)'), 'train[k=10]': run('forced'), 'evaluate[k=10]': run('forced upstream (train)'), 'train-all': run('forced upstream (data)') },
  },
  {
    name: '--only keeps the stage and what it needs, and leaves the rest out',
    artifacts: new Map(),
    previous: new Map(),
    selection: { force: [], only: ['train-all'] },
    expected: { 'data': run('new'), 'cluster[k=10]': skipped, 'train[k=10]': skipped, 'evaluate[k=10]': skipped, 'train-all': run('new') },
  },
  {
    name: 'forcing a stage that --only leaves out forces nothing',
    artifacts: allOk(),
    previous: entries(plan),
    selection: { force: ['cluster'], only: ['train-all'] },
    expected: { 'data': cached, 'cluster[k=10]': skipped, 'train[k=10]': skipped, 'evaluate[k=10]': skipped, 'train-all': cached },
  },
];

describe('decide says, from the store\'s facts, what is cached and why anything runs', () => {
  for (const row of rows) {
    it(row.name, () => {
      const states = decide(plan, { artifacts: row.artifacts, previous: row.previous }, row.selection);
      assert.deepEqual(Object.fromEntries(states), row.expected);
    });
  }
});

describe('decide forces artifacts, not ids', () => {
  it('forcing one of two instances of one key (twins) forces the other and what each feeds', () => {
    const instances: StageInstance[] = [
      { id: 'data', stage: 'data', type: type('dataset'), matrix: {}, params: {}, needs: {} },
      // Round 1 of two query strategies: the same params and inputs, one key.
      { id: 'active[q=a]', stage: 'active', type: type('active-learning'), matrix: { q: 'a' }, params: { epochs: 5 }, needs: { data: ['data'] } },
      { id: 'active[q=b]', stage: 'active', type: type('active-learning'), matrix: { q: 'b' }, params: { epochs: 5 }, needs: { data: ['data'] } },
      { id: 'next[q=a]', stage: 'next', type: type('evaluate'), matrix: { q: 'a' }, params: { q: 'a' }, needs: { active: ['active[q=a]'] } },
      { id: 'next[q=b]', stage: 'next', type: type('evaluate'), matrix: { q: 'b' }, params: { q: 'b' }, needs: { active: ['active[q=b]'] } },
    ];
    const twins = assignKeys({ name: 'twins', params: {}, stages: ['data', 'active', 'next'], axes: {}, rounds: {}, instances }, { backend: 'none', files: new Map() });
    assert.equal(keyOf(twins, 'active[q=a]'), keyOf(twins, 'active[q=b]'));
    const states = decide(twins, { artifacts: new Map(twins.instances.map((i) => [i.key, { state: 'ok' }])), previous: entries(twins) }, { force: ['active[q=a]'], only: [] });
    assert.deepEqual(Object.fromEntries(states), {
      'data': cached,
      'active[q=a]': run('forced'),
      'active[q=b]': run('forced'),
      'next[q=a]': run('forced upstream (active)'),
      'next[q=b]': run('forced upstream (active)'),
    });
  });
});
