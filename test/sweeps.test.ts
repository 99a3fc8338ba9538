import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readRange, splitTopLevel } from '../src/config/overrides.js';
import { Rig, STAGES, type CliResult } from './support/rig.js';

const PIPELINE = `name: sweep
params:
  epochs: 3
  ks: [1, 2]
  label: base
matrix:
  k: "\${{ params.ks }}"
  lr: [0.1]
stages:
  prep: { uses: ${STAGES}/count.mjs, with: { log: invocations.log, value: "\${{ matrix.k }}" } }
  train:
    uses: ${STAGES}/count.mjs
    needs: [prep]
    with: { log: invocations.log, value: "\${{ params.epochs }}-\${{ matrix.lr }}-\${{ params.label }}" }
`;

/** The ids of the instances `plan --json` lists, sorted. */
function ids(result: CliResult): string[] {
  return result.events.flatMap((e) => (e.event === 'instance' ? [e.id] : [])).sort();
}

async function plan(sets: readonly string[]): Promise<CliResult> {
  const rig = await Rig.create();
  await rig.write('p.yaml', PIPELINE);
  return rig.run(['plan', 'p.yaml', '--json', ...sets.flatMap((s) => ['--set', s])]);
}

describe('sweeps from the command line', () => {
  it('a matrix axis takes its values from a param written in the file', async () => {
    const result = await plan([]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(ids(result), ['prep[k=1]', 'prep[k=2]', 'train[k=1 lr=0.1]', 'train[k=2 lr=0.1]']);
  });

  it('--set on a matrix axis replaces its values, as a list, a comma list or a range', async () => {
    for (const set of ['lr=[0.1, 0.2]', 'lr=0.1,0.2', 'lr=range(0.1, 0.3, 0.1)']) {
      const result = await plan([set]);
      assert.equal(result.code, 0, `${set}: ${result.stderr}`);
      assert.deepEqual(ids(result).filter((i) => i.startsWith('train')), ['train[k=1 lr=0.1]', 'train[k=1 lr=0.2]', 'train[k=2 lr=0.1]', 'train[k=2 lr=0.2]'], set);
    }
  });

  it('--set on the param an axis reads changes the axis', async () => {
    const result = await plan(['ks=range(10, 40, 10)']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(ids(result).filter((i) => i.startsWith('prep')), ['prep[k=10]', 'prep[k=20]', 'prep[k=30]']);
  });

  it('a comma list on a scalar param sweeps it: every stage reading it is expanded over it, the others are not', async () => {
    const result = await plan(['epochs=1,2']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(ids(result), ['prep[k=1]', 'prep[k=2]', 'train[epochs=1 k=1 lr=0.1]', 'train[epochs=1 k=2 lr=0.1]', 'train[epochs=2 k=1 lr=0.1]', 'train[epochs=2 k=2 lr=0.1]']);
  });

  it('a swept run computes each value and shares the stages that do not read it', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const result = await rig.run(['run', 'p.yaml', '--set', 'epochs=1,2', '--set', 'ks=[1]']);
    assert.equal(result.code, 0, result.stderr);
    const lines = await rig.invocations();
    assert.equal(lines.filter((l) => l.startsWith('prep ')).length, 1);
    assert.deepEqual(lines.filter((l) => l.startsWith('train ')).map((l) => l.split(' ')[1]).sort(), ['{"epochs":1,"k":1,"lr":0.1}', '{"epochs":2,"k":1,"lr":0.1}']);
  });

  const BAD: readonly [string, RegExp, RegExp?][] = [
    ['kk=1,2', /^<command line>:1:1 error: --set kk=1,2: unknown param or matrix axis "kk"$/, /did you mean "ks?"\?/],
    ['k=1,2', /^<command line>:1:1 error: --set k=1,2: matrix axis "k" takes its values from param "ks"$/, /--set ks=1,2/],
    ['lr=fast,0.2', /^<command line>:1:4 error: --set lr=fast,0.2: matrix axis "lr" has number values, got string "fast"$/],
    ['epochs=1,two', /^<command line>:1:8 error: --set epochs=1,two: param "epochs" is a number \(default 3\), got string "two"$/],
    ['epochs=range(5, 1)', /^<command line>:1:8 error: --set epochs=range\(5, 1\): range\(5, 1\) is empty$/],
    ['epochs=range(0, 1e9)', /^<command line>:1:8 error: --set epochs=range\(0, 1e9\): range\(0, 1000000000\) makes 1000000000 values, more than 10000$/],
    ['ks=3', /^<command line>:1:4 error: --set ks=3: param "ks" is an array \(default \[1,2\]\), got number "3"$/],
  ];
  for (const [set, expected, hint] of BAD) {
    it(`a bad --set ${set} is a located diagnostic naming the flag, exit code 2`, async () => {
      const rig = await Rig.create();
      await rig.write('p.yaml', PIPELINE);
      const result = await rig.run(['validate', 'p.yaml', '--set', set]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr.split('\n')[0] ?? '', expected, result.stderr);
      if (hint) assert.match(result.stderr, hint);
    });
  }

  it('a matrix axis reading a param that is not a list is located at the axis', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE.replace('ks: [1, 2]', 'ks: 3'));
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr.split('\n')[0] ?? '', /^p\.yaml:7:6 error: matrix axis "k" reads param "ks", which must be a non-empty list, got number 3$/);
  });

  it('a matrix axis written as an expression other than a param is located in the file', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE.replace('"${{ params.ks }}"', '"${{ matrix.lr }}"'));
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr.split('\n')[0] ?? '', /^p\.yaml:7:6 error: a matrix axis is a list of values or "\$\{\{ params\.NAME \}\}"/);
  });
});

describe('the --set value readers', () => {
  it('range() counts like Python: stop excluded, step from the start without drift', () => {
    assert.deepEqual(readRange('range(3)'), [0, 1, 2]);
    assert.deepEqual(readRange('range(10, 50, 20)'), [10, 30]);
    assert.deepEqual(readRange('range(5, 0, -2)'), [5, 3, 1]);
    assert.deepEqual(readRange('range(0, 0.5, 0.1)'), [0, 0.1, 0.2, 0.3, 0.4]);
    assert.equal(readRange('10,20'), null);
    assert.match(String(readRange('range(1, 2, 0)')), /step must not be 0/);
    assert.match(String(readRange('range(a)')), /expected range/);
  });

  it('a comma list splits only outside brackets, braces and quotes', () => {
    assert.deepEqual(splitTopLevel('1, [2,3], {a: 1, b: 2}, "x,y"'), ['1', '[2,3]', '{a: 1, b: 2}', '"x,y"']);
  });
});
