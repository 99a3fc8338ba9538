import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { explainChange, type KeyRecord } from '../src/cache/key.js';
import { parsePipeline } from '../src/config/load.js';
import { assignKeys, expand, type KeyFacts } from '../src/plan/planner.js';
import type { Expansion, Plan, StageTypeInfo } from '../src/plan/types.js';
import { loadStageTypes } from '../src/stages/registry.js';

/** The committed golden records; `SEEDFLOW_UPDATE_GOLDEN=1 npm test` rewrites them after an intended change. */
const GOLDEN = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/golden/keys.json');
const UPDATE = process.env['SEEDFLOW_UPDATE_GOLDEN'] === '1';

const PIPELINE = `
name: golden
params:
  seed: 7
  epochs: 3
matrix:
  k: [10, 20]
  seeding:
    - { strategy: full }
    - { strategy: part, percent: 25 }
  exclude:
    - { k: 20, seeding: { strategy: full } }
stages:
  data:
    uses: dataset
    with: { name: fashion-mnist }
  split:
    uses: split
    needs: [data]
    with: { train: 1000, validation: 200 }
  cluster:
    uses: kmeans
    needs: [split]
    with: { k: "\${{ matrix.k }}", seed: "\${{ params.seed }}", threads: 2 }
  seed:
    uses: seed-labels
    needs: [split, cluster]
    with: { strategy: "\${{ matrix.seeding.strategy }}", percent: "\${{ matrix.seeding.percent }}" }
  train:
    uses: train
    needs: [split, seed]
    with:
      model:
        input_shape: [28, 28]
        layers:
          - { type: flatten }
          - { type: dense, units: 10, activation: softmax }
      epochs: "\${{ params.epochs }}"
      seed: "\${{ params.seed }}"
  evaluate:
    uses: evaluate
    needs: [train, split]
  results:
    uses: aggregate
    needs: [evaluate]
`;

/** Stand-ins for what the dataset stage's `files` hook and the store would report. */
const FACTS: KeyFacts = {
  backend: 'cpu',
  files: new Map([['data', {
    paths: ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'],
    hashes: {
      'train-images-idx3-ubyte.gz': '1'.repeat(64),
      'train-labels-idx1-ubyte.gz': '2'.repeat(64),
      't10k-images-idx3-ubyte.gz': '3'.repeat(64),
      't10k-labels-idx1-ubyte.gz': '4'.repeat(64),
    },
  }]]),
};

async function expansion(): Promise<Expansion> {
  const { pipeline, diagnostics } = parsePipeline('golden.yaml', PIPELINE);
  assert.deepEqual(diagnostics, []);
  assert.ok(pipeline);
  const types = await loadStageTypes(pipeline);
  assert.deepEqual(types.diagnostics, []);
  const expanded = expand(pipeline, types.types, pipeline.spec.params);
  assert.deepEqual(expanded.diagnostics, []);
  assert.ok(expanded.expansion);
  return expanded.expansion;
}

type Golden = Record<string, { readonly key: string; readonly record: KeyRecord }>;

function goldenOf(plan: Plan): Golden {
  return Object.fromEntries(plan.instances.map((i) => [i.id, { key: i.key, record: i.record }]));
}

/** For people: which instances appeared, disappeared or changed, and how. */
function differences(before: Golden, after: Golden): string[] {
  const owner = new Map([...Object.entries(before), ...Object.entries(after)].map(([id, e]) => [e.key, id]));
  const lines: string[] = [];
  for (const id of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const was = before[id];
    const now = after[id];
    if (was === undefined) lines.push(`${id}: new instance`);
    else if (now === undefined) lines.push(`${id}: instance gone`);
    else if (was.key !== now.key) lines.push(`${id}: ${explainChange(was.record, now.record, (key) => owner.get(key)).join('; ') || 'key changed'}`);
  }
  return lines;
}

describe('cache keys', () => {
  it('every instance of a fixed pipeline keeps its golden key record and key', async () => {
    const actual = goldenOf(assignKeys(await expansion(), FACTS));
    if (UPDATE || !existsSync(GOLDEN)) {
      writeFileSync(GOLDEN, `${JSON.stringify(actual, null, 2)}\n`);
      if (!UPDATE) assert.fail(`${GOLDEN} did not exist and was written; check it and commit it`);
      return;
    }
    const expected = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Golden;
    const changes = differences(expected, actual);
    assert.deepEqual(changes, [], `keys changed, which invalidates every user's cache:\n${changes.join('\n')}\n(if intended, rerun with SEEDFLOW_UPDATE_GOLDEN=1 and commit test/golden/keys.json)`);
    // Records hold prototype-free maps of the user's values; compare their content.
    assert.deepEqual(JSON.parse(JSON.stringify(actual)), expected);
  });

  it('a key does not depend on the order of the params\' keys', async () => {
    const base = await expansion();
    const reversed = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(reversed);
      if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]));
      return value;
    };
    const shuffled: Expansion = { ...base, instances: base.instances.map((i) => ({ ...i, params: reversed(i.params) as typeof i.params })) };
    assert.notDeepEqual(Object.keys(shuffled.instances.find((i) => i.stage === 'train')?.params ?? {}), Object.keys(base.instances.find((i) => i.stage === 'train')?.params ?? {}));
    assert.deepEqual(assignKeys(shuffled, FACTS).instances.map((i) => i.key), assignKeys(base, FACTS).instances.map((i) => i.key));
  });

  it('a key does not depend on untracked params', async () => {
    const base = await expansion();
    const cluster = base.instances.find((i) => i.stage === 'cluster');
    assert.ok(cluster?.type.untracked.includes('threads'));
    const more: Expansion = { ...base, instances: base.instances.map((i) => (i.stage === 'cluster' ? { ...i, params: { ...i.params, threads: 8 } } : i)) };
    assert.deepEqual(assignKeys(more, FACTS).instances.map((i) => i.key), assignKeys(base, FACTS).instances.map((i) => i.key));
  });

  it('a new stage version changes its key and those downstream, not those upstream', async () => {
    const base = await expansion();
    const bump = (type: StageTypeInfo): StageTypeInfo => ({ ...type, version: `${type.version}+1` });
    const bumped: Expansion = { ...base, instances: base.instances.map((i) => (i.stage === 'seed' ? { ...i, type: bump(i.type) } : i)) };
    const before = new Map(assignKeys(base, FACTS).instances.map((i) => [i.id, i.key]));
    const changed = assignKeys(bumped, FACTS).instances.filter((i) => before.get(i.id) !== i.key).map((i) => i.stage);
    assert.deepEqual([...new Set(changed)], ['seed', 'train', 'evaluate', 'results']);
  });

  it('renaming a stage changes only the key of the gathering stage whose rows name it, and says so', async () => {
    const { pipeline } = parsePipeline('golden.yaml', PIPELINE.replace(/\bevaluate\b(?=:|\])/g, 'score'));
    assert.ok(pipeline);
    const types = await loadStageTypes(pipeline);
    const renamed = expand(pipeline, types.types, pipeline.spec.params).expansion;
    assert.ok(renamed);
    const before = assignKeys(await expansion(), FACTS);
    const after = assignKeys(renamed, FACTS);
    const stageKeys = (plan: Plan): string[] => plan.instances.filter((i) => i.stage !== 'results').map((i) => i.key);
    assert.deepEqual(stageKeys(after), stageKeys(before));
    const gather = (plan: Plan): KeyRecord | undefined => plan.instances.find((i) => i.stage === 'results')?.record;
    assert.deepEqual(gather(after)?.gathered?.map((id) => id.split('[')[0]), ['score', 'score', 'score']);
    assert.deepEqual(explainChange(gather(before) as KeyRecord, gather(after) as KeyRecord, () => undefined), ['the gathered cells\' names changed']);
  });

  it('a key changes with an external file\'s hash and with the backend of a numeric stage only', async () => {
    const base = await expansion();
    const keys = (facts: KeyFacts): Map<string, string> => new Map(assignKeys(base, facts).instances.map((i) => [i.stage, i.key]));
    const reference = keys(FACTS);
    const otherFile = keys({ ...FACTS, files: new Map([['data', { paths: [], hashes: { 'train-images-idx3-ubyte.gz': '5'.repeat(64) } }]]) });
    assert.notEqual(otherFile.get('data'), reference.get('data'));
    const otherBackend = keys({ ...FACTS, backend: 'wasm' });
    const moved = [...reference].filter(([stage, key]) => otherBackend.get(stage) !== key).map(([stage]) => stage);
    const numeric = base.instances.filter((i) => i.type.numeric).map((i) => i.stage);
    assert.ok(numeric.length > 0);
    for (const stage of numeric) assert.ok(moved.includes(stage), stage);
    assert.ok(!moved.includes('data'));
  });
});
