import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { executed, Rig } from './support/rig.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const PRELOAD = join(ROOT, 'test', 'support', 'report-loaded.cjs');

/** Where the real Fashion-MNIST is: the environment variable or Debian's package. */
function dataAvailable(): boolean {
  const env = process.env['SEEDFLOW_DATA_DIR'];
  const dirs = [env, env ? join(env, 'fashion-mnist') : undefined, '/usr/share/datasets/fashion-mnist'];
  return dirs.some((d) => d !== undefined && existsSync(join(d, 'train-images-idx3-ubyte.gz')));
}

interface Row { readonly [column: string]: string | number | boolean | null }

describe('the quick pipeline on the real Fashion-MNIST', { timeout: 20 * 60_000 }, () => {
  // On a developer's machine without the data this is skipped; CI installs the data, so there it must run.
  const skip = !dataAvailable() && process.env['CI'] !== 'true' ? 'Fashion-MNIST not found (install dataset-fashion-mnist or set SEEDFLOW_DATA_DIR)' : false;

  it('runs end to end, then a second run executes nothing and does not load TensorFlow', { skip }, async () => {
    const rig = await Rig.create();
    const pipeline = join(ROOT, 'pipelines', 'quick.yaml');
    const first = await rig.run(['run', pipeline, '--store', join(rig.dir, 'artifacts'), '--json', '--jobs', '2']);
    assert.equal(first.code, 0, first.stderr.slice(-3000));
    assert.equal(executed(first).length, 35);
    const clusters = executed(first).filter((id) => id.startsWith('cluster['));
    assert.deepEqual(clusters, ['cluster[k=10]', 'cluster[k=20]']);

    const results = first.events.find((e) => e.event === 'instance' && e.stage === 'results');
    assert.ok(results && results.event === 'instance');
    const table = JSON.parse(await readFile(join(rig.dir, 'artifacts', 'objects', results.key.slice(0, 2), results.key, 'results.json'), 'utf8')) as { rows: Row[] };
    assert.equal(table.rows.length, 2 * 4 + 2);
    const all = table.rows.find((r) => r['stage'] === 'evaluate-all');
    const random = table.rows.find((r) => r['stage'] === 'evaluate-random');
    assert.ok(all && random);
    // 5,000 images for 2 epochs: far from the report's 0.885, but well above the 50-label baseline.
    assert.ok(Number(all['evaluate.accuracy']) > 0.6, `all-labels accuracy ${all['evaluate.accuracy']}`);
    assert.ok(Number(all['evaluate.accuracy']) > Number(random['evaluate.accuracy']));
    for (const row of table.rows.filter((r) => r['stage'] === 'evaluate')) {
      assert.equal(typeof row['k'], 'number');
      assert.ok(Number(row['evaluate.accuracy']) > 0.1, JSON.stringify(row));
      if (row['seeding.strategy'] !== 'centers') assert.ok(Number(row['seed-labels.labelAccuracy']) > 0.3, JSON.stringify(row));
    }

    const loaded = join(rig.dir, 'loaded.json');
    const second = await rig.run(['run', pipeline, '--store', join(rig.dir, 'artifacts'), '--json'], { NODE_OPTIONS: `--require ${PRELOAD}`, SEEDFLOW_TEST_LOADED: loaded });
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(executed(second), []);
    assert.deepEqual(JSON.parse(await readFile(loaded, 'utf8')), [], 'a fully cached run loaded TensorFlow');
  });
});
