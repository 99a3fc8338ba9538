import assert from 'node:assert/strict';
import { readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { executed, Rig } from './support/rig.js';
import { tinyPipeline, writeTinyIdx } from './support/tiny-data.js';

/** The artifacts in a rig's store, by the stage that made them. */
async function storedStages(rig: Rig): Promise<string[]> {
  const root = join(rig.dir, 'artifacts', 'objects');
  const stages: string[] = [];
  for (const prefix of await readdir(root).catch(() => [])) {
    for (const key of await readdir(join(root, prefix))) {
      stages.push((JSON.parse(await readFile(join(root, prefix, key, 'manifest.json'), 'utf8')) as { stage: string }).stage);
    }
  }
  return stages.sort();
}

describe('bad data', () => {
  it('a truncated IDX file fails with the file named and no artifact written', async () => {
    const rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    const images = join(rig.dir, 'data', 'train-images-idx3-ubyte');
    const bytes = await readFile(images);
    await writeFile(images, bytes.subarray(0, bytes.length - 100));
    await rig.write('p.yaml', tinyPipeline('./data'));
    const result = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(result.code, 1, result.stderr);
    const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'data');
    assert.ok(end && end.event === 'stage-end' && end.status === 'failed');
    assert.ok(end.failure?.reason === 'user-error', JSON.stringify(end.failure));
    assert.match(end.failure.message, /train-images-idx3-ubyte.*truncated/);
    assert.deepEqual(await storedStages(rig), []);
  });

  it('labels out of range fail with the file named and no artifact written', async () => {
    const rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    const labels = join(rig.dir, 'data', 't10k-labels-idx1-ubyte');
    const bytes = Buffer.from(await readFile(labels));
    bytes[8 + 3] = 12;
    await writeFile(labels, bytes);
    await rig.write('p.yaml', tinyPipeline('./data'));
    const result = await rig.run(['run', 'p.yaml']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /t10k-labels-idx1-ubyte/);
    assert.match(result.stderr, /12/);
    assert.deepEqual(await storedStages(rig), []);
  });

  it('a CSV without its label column fails with the file named', async () => {
    const rig = await Rig.create();
    const pixels = Array.from({ length: 4 }, (_, i) => `p${i}`).join(',');
    await rig.write('train.csv', `${pixels}\n1,2,3,4\n5,6,7,8\n`);
    await rig.write('test.csv', `label,${pixels}\n0,1,2,3,4\n`);
    await rig.write('p.yaml', 'name: csv\nstages:\n  data: { uses: dataset, with: { name: csv, train: ./train.csv, test: ./test.csv } }\n');
    const result = await rig.run(['run', 'p.yaml']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /train\.csv/);
    assert.match(result.stderr, /label/);
    assert.deepEqual(await storedStages(rig), []);
  });

  it('a stage missing its split input is refused before anything runs, located at its needs, with the hint to add one', async () => {
    const rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    await rig.write('p.yaml', `name: no-split
stages:
  data: { uses: dataset, with: { name: fashion-mnist, path: ./data } }
  seed: { uses: seed-labels, needs: [data], with: { strategy: all } }
`);
    const json = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(json.code, 2, json.stderr);
    assert.equal(json.events.filter((e) => e.event === 'stage-start').length, 0);
    assert.match(json.stderr, /p\.yaml:4:37 error: stage "seed" needs a "split" stage: seed-labels reads the training labels of a split/);
    assert.match(json.stderr, /hint: add a stage of type "split" and list it in this stage's needs/);
    assert.doesNotMatch(json.stderr, /internal error|at .*\.js:\d+/);
    assert.deepEqual(await storedStages(rig), []);
  });

  it('data that cannot be found is a located error at the dataset stage, exit code 2', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', tinyPipeline('./nowhere'));
    const result = await rig.run(['plan', 'p.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /p\.yaml:\d+:\d+ error: stage "data": .*not found/);
  });

  it('the same pipeline with the same seed gives identical metrics in a fresh store', async () => {
    const rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    await rig.write('p.yaml', tinyPipeline('./data'));
    const first = await rig.run(['run', 'p.yaml', '--json', '--store', 'one']);
    const second = await rig.run(['run', 'p.yaml', '--json', '--store', 'two']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(executed(second).length, executed(first).length);
    const metrics = (r: typeof first): Record<string, unknown> => Object.fromEntries(r.events.flatMap((e) =>
      e.event === 'stage-end' && e.stage.startsWith('evaluate') ? [[e.id, e.summary]] : []));
    assert.deepEqual(metrics(second), metrics(first));
    assert.ok(Object.keys(metrics(first)).length === 2 * 3 + 2);
  });
});
