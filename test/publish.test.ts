import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rig, STAGES } from './support/rig.js';

const PIPELINE = `name: named
matrix: { k: [1, 2] }
stages:
  cell: { uses: ${STAGES}/count.mjs, with: { log: invocations.log, value: "\${{ matrix.k }}" }, publish: out/cells }
  table: { uses: aggregate, needs: [cell], publish: out/table }
  hidden: { uses: ${STAGES}/count.mjs, with: { log: invocations.log, value: 0 } }
`;

describe('named outputs', () => {
  it('run copies each published stage\'s files to the folder named in the pipeline, one subfolder per matrix instance', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const result = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((await readdir(join(rig.dir, 'out', 'table'))).sort(), ['results.csv', 'results.json']);
    assert.equal((await readFile(join(rig.dir, 'out', 'table', 'results.csv'), 'utf8')).trim().split('\n').length, 3, 'a header and one row per cell');
    assert.deepEqual((await readdir(join(rig.dir, 'out', 'cells'))).sort(), ['k=1', 'k=2']);
    assert.equal((JSON.parse(await readFile(join(rig.dir, 'out', 'cells', 'k=2', 'value.json'), 'utf8')) as { value: number }).value, 2);
    const published = result.events.flatMap((e) => (e.event === 'published' ? [e.id] : [])).sort();
    assert.deepEqual(published, ['cell[k=1]', 'cell[k=2]', 'table']);
  });

  it('a fully cached run publishes again, replacing an edited copy without touching the cache', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const original = await readFile(join(rig.dir, 'out', 'table', 'results.csv'), 'utf8');
    await writeFile(join(rig.dir, 'out', 'table', 'results.csv'), 'edited');
    const again = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.events.filter((e) => e.event === 'stage-start').length, 0);
    assert.equal(await readFile(join(rig.dir, 'out', 'table', 'results.csv'), 'utf8'), original);
    assert.equal((await rig.invocations()).length, 3);
  });

  it('a publish folder that is not a string is a located diagnostic', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE.replace('publish: out/table', 'publish: [out]'));
    const result = await rig.run(['validate', 'p.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr.split('\n')[0] ?? '', /^p\.yaml:5:\d+ error: "stages\.table\.publish" must be string, got array/);
  });
});
