import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Random } from '../src/util/random.js';
import { Rig } from './support/rig.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A CSV shaped like Overhead-MNIST's: a "label" header and 784 pixel columns, each class a brighter band of rows. */
function overheadCsv(rows: number, seed: number): string {
  const random = new Random(seed);
  const lines = [['label', ...Array.from({ length: 784 }, (_, i) => `pixel${i + 1}`)].join(',')];
  for (let r = 0; r < rows; r++) {
    const label = r % 10;
    const pixels = Array.from({ length: 784 }, (_, i) => {
      const band = Math.floor(Math.floor(i / 28) / 3) === label;
      return Math.floor((band ? 160 : 10) + random.next() * 60);
    });
    lines.push([label, ...pixels].join(','));
  }
  return `${lines.join('\n')}\n`;
}

describe('the Overhead-MNIST pipeline', () => {
  it('runs end to end on generated CSV files of the data set\'s shape and gathers every cell', async () => {
    const rig = await Rig.create();
    const train = await rig.write('data/train.csv', overheadCsv(400, 1));
    const test = await rig.write('data/test.csv', overheadCsv(100, 2));
    const sets = [`train_csv=${train}`, `test_csv=${test}`, 'k=[10]', 'seeding=[{strategy: part, percent: 25}]', 'epochs=2', 'batch_size=100', 'random_labels=20'];
    const result = await rig.run(['run', join(ROOT, 'pipelines', 'overhead-mnist.yaml'), '--store', join(rig.dir, 'store'), '--json', '--jobs', '2', ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(result.code, 0, result.stderr);
    const end = result.events.find((e) => e.event === 'run-end');
    assert.ok(end?.event === 'run-end' && end.status === 'success');
    const results = await rig.run(['results', join(ROOT, 'pipelines', 'overhead-mnist.yaml'), '--store', join(rig.dir, 'store'), '--format', 'json', ...sets.flatMap((s) => ['--set', s])]);
    assert.equal(results.code, 0, results.stderr);
    const table = JSON.parse(results.stdout) as { rows: { id: string; status?: string; 'evaluate.accuracy'?: number }[] };
    assert.deepEqual(table.rows.map((r) => r.id).sort(), ['evaluate-all', 'evaluate-random', 'evaluate[k=10 seeding.strategy=part seeding.percent=25]']);
    for (const row of table.rows) assert.equal(typeof row['evaluate.accuracy'], 'number', JSON.stringify(row));
    const data = result.events.find((e) => e.event === 'stage-end' && e.stage === 'data');
    assert.ok(data?.event === 'stage-end' && data.status === 'done');
    assert.match(JSON.stringify(data.summary), /400/);
  });

  it('says where the CSV files were looked for when they are missing', async () => {
    const rig = await Rig.create();
    const result = await rig.run(['plan', join(ROOT, 'pipelines', 'overhead-mnist.yaml'), '--store', join(rig.dir, 'store'), '--set', `train_csv=${join(rig.dir, 'nope.csv')}`]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /overhead-mnist\.yaml:\d+:\d+ error: stage "data": CSV file .*nope\.csv: not found/);
    assert.ok((await readFile(join(ROOT, 'README.md'), 'utf8')).includes('overhead-mnist'));
  });
});
