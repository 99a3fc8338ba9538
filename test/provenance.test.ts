import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rig } from './support/rig.js';

/** A stage whose accuracy is its param, so runs differ in a known metric. */
const SCORE = `export const stage = {
  name: 'score', version: 1,
  schema: { type: 'object', additionalProperties: false, properties: { accuracy: { type: 'number' } } },
  async run(inputs, params, ctx) {
    await ctx.writeJson('score.json', params);
    return { metrics: { accuracy: params.accuracy }, timings: {} };
  },
};
`;

const PIPELINE = `name: prov
params: { base: 0.5 }
matrix: { bump: [0, 0.25] }
stages:
  prep: { uses: ./score.mjs, with: { accuracy: "\${{ params.base }}" } }
  cell: { uses: ./score.mjs, needs: [prep], with: { accuracy: "\${{ matrix.bump }}" } }
`;

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } }).trim();
}

describe('provenance of a run', () => {
  it('a run records the pipeline text, the git commit and the seedflow version; runs shows them with the best accuracy', async () => {
    const rig = await Rig.create();
    await rig.write('score.mjs', SCORE);
    await rig.write('p.yaml', PIPELINE);
    git(rig.dir, 'init', '-q');
    git(rig.dir, 'add', 'p.yaml', 'score.mjs');
    git(rig.dir, 'commit', '-qm', 'pipeline');
    const commit = git(rig.dir, 'rev-parse', 'HEAD');
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const runs = await rig.run(['runs', '--json']);
    assert.equal(runs.code, 0, runs.stderr);
    const record = JSON.parse(runs.stdout.trim()) as { provenance: { seedflow: string; git: { commit: string; dirty: boolean }; pipelineSha256: string }; best: { value: number; id: string } };
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    assert.equal(record.provenance.seedflow, pkg.version);
    assert.equal(record.provenance.git.commit, commit);
    assert.equal(record.provenance.pipelineSha256.length, 64);
    assert.deepEqual(record.best, { value: 0.5, id: 'prep' });
    const table = await rig.run(['runs']);
    assert.match(table.stdout, /BEST ACCURACY/);
    assert.match(table.stdout, new RegExp(`0\\.5 prep\\s+${commit.slice(0, 8)}\\s`), table.stdout);
  });

  it('compare names the param that changed at the source, and the changed pipeline file', async () => {
    const rig = await Rig.create();
    await rig.write('score.mjs', SCORE);
    await rig.write('p.yaml', PIPELINE);
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    await rig.write('p.yaml', PIPELINE.replace('base: 0.5', 'base: 0.75'));
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const compare = await rig.run(['compare', 'latest~1', 'latest']);
    assert.equal(compare.code, 0, compare.stderr);
    assert.match(compare.stdout, /pipeline file/);
    assert.match(compare.stdout, /3 stage instances computed from different inputs or params; at the source:\n {2}prep: param accuracy changed \(0\.5 → 0\.75\)\n/, compare.stdout);
  });
});
