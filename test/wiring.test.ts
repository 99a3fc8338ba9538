import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rig } from './support/rig.js';

/** A pipeline of built-in stages; each case replaces a line of it with a wiring mistake. */
const PIPELINE = `name: wiring
matrix:
  k: [10, 20]
  seeding:
    - { strategy: full }
    - { strategy: part, percent: 25 }
    - { strategy: random, n: 50 }
stages:
  data: { uses: dataset, with: { name: fashion-mnist } }
  split: { uses: split, needs: [data] }
  cluster: { uses: kmeans, needs: [split], with: { k: "\${{ matrix.k }}" } }
  seed:
    uses: seed-labels
    needs: [split, cluster]
    with: { strategy: "\${{ matrix.seeding.strategy }}", percent: "\${{ matrix.seeding.percent }}", n: "\${{ matrix.seeding.n }}" }
  train: { uses: train, needs: [split, seed], with: { epochs: 1 } }
  evaluate: { uses: evaluate, needs: [train, split] }
  results: { uses: aggregate, needs: [evaluate] }
`;

interface Case {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  /** The one diagnostic expected, as its first line. */
  readonly expect: RegExp;
  readonly hint?: RegExp;
}

const CASES: readonly Case[] = [
  {
    name: 'an evaluate whose needs lack a split',
    from: 'needs: [train, split] }', to: 'needs: [train] }',
    expect: /p\.yaml:17:38 error: stage "evaluate" needs a "split" stage: evaluate measures the model on the test set of a split \(in all 6 instances\)$/,
    hint: /add "split" to its needs/,
  },
  {
    name: 'a part strategy whose needs lack a k-means stage',
    from: 'needs: [split, cluster]', to: 'needs: [split]',
    expect: /p\.yaml:14:12 error: stage "seed" needs a "kmeans" stage: this strategy labels through k-means clusters \(in 2 of 3 instances: seeding\.strategy=full; seeding\.strategy=part seeding\.percent=25\)$/,
    hint: /add "cluster" to its needs/,
  },
  {
    name: 'a split with no needs at all',
    from: 'split: { uses: split, needs: [data] }', to: 'split: { uses: split }',
    expect: /p\.yaml:10:3 error: stage "split" needs a "dataset" stage: split divides the images of a dataset stage$/,
    hint: /add "data" to its needs/,
  },
  {
    name: 'a train without any seed set',
    from: 'needs: [split, seed], with', to: 'needs: [split], with',
    expect: /p\.yaml:16:32 error: stage "train" needs a "propagate" or "seed-labels" stage: train learns from a seed set/,
  },
];

describe('stage types declare the inputs they require', () => {
  it('the wired pipeline is valid as written', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 0, result.stderr);
  });

  for (const c of CASES) {
    it(`${c.name} is one located diagnostic from validate, before anything runs`, async () => {
      const rig = await Rig.create();
      assert.ok(PIPELINE.includes(c.from), c.from);
      await rig.write('p.yaml', PIPELINE.replace(c.from, c.to));
      const result = await rig.run(['validate', 'p.yaml']);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr.split('\n')[0] ?? '', c.expect, result.stderr);
      if (c.hint) assert.match(result.stderr, c.hint);
      assert.doesNotMatch(result.stderr, /\d+ errors found/, result.stderr);
    });
  }

  it('run refuses a miswired pipeline before any stage starts', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE.replace('needs: [train, split] }', 'needs: [train] }'));
    const result = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.events.filter((e) => e.event === 'stage-start').length, 0);
  });
});

describe('one diagnostic per mistake', () => {
  it('two typos in a stage expanded over six instances are two diagnostics, each naming the instances', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE.replace('with: { epochs: 1 }', 'with: { epochs: one, batch_sise: 10 }'));
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /2 errors found/, result.stderr);
    assert.match(result.stderr, /unknown key "batch_sise" \(in all 6 instances\)/);
    assert.match(result.stderr, /"epochs" must be integer, got string "one" \(in all 6 instances\)/);
  });

  it('a mistake in some instances only names those instances', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE.replace('{ strategy: part, percent: 25 }', '{ strategy: part, percent: 250 }'));
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^p\.yaml:\d+:\d+ error: stage "seed": "percent" must be <= 100 \(in 2 of 6 instances: k=10 seeding\.strategy=part seeding\.percent=250; k=20 seeding\.strategy=part seeding\.percent=250\)$/m, result.stderr);
    assert.doesNotMatch(result.stderr, /errors found/);
  });
});
