import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, Rig, STAGES } from './support/rig.js';

const PIPELINE = `name: located
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ../invocations.log, value: 1 } }
`;

describe('where the store is found without --store', () => {
  it('a pipeline in another folder uses the store next to it, and plan run from elsewhere sees its cache', async () => {
    const rig = await Rig.create();
    await rig.write('project/exp.yaml', PIPELINE);
    const run = await rig.run(['run', 'project/exp.yaml']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`store: ${join(rig.dir, 'project', 'artifacts').replace(/[/.]/g, '\\$&')} \\(next to the pipeline\\)`));
    assert.ok(existsSync(join(rig.dir, 'project', 'artifacts', 'objects')));
    assert.ok(!existsSync(join(rig.dir, 'artifacts')), 'a store was created in the current folder');
    const plan = await rig.run(['plan', 'project/exp.yaml', '--json']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stderr, /store: .*project\/artifacts \(found\)/);
    assert.deepEqual(plan.events.flatMap((e) => (e.event === 'instance' ? [e.status] : [])), ['cached']);
  });

  it('a pipeline in a subfolder of a project uses the store at the project root', async () => {
    const rig = await Rig.create();
    await mkdir(join(rig.dir, 'repo', '.git'), { recursive: true });
    await rig.write('repo/pipelines/exp.yaml', PIPELINE.replace('../invocations.log', '../../invocations.log'));
    const run = await rig.run(['run', 'repo/pipelines/exp.yaml']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /store: .*repo\/artifacts \(at the project root\)/);
    assert.ok(existsSync(join(rig.dir, 'repo', 'artifacts', 'objects')));
  });

  it('read-only commands never create a store', async () => {
    const rig = await Rig.create();
    await rig.write('project/exp.yaml', PIPELINE);
    for (const args of [['plan', 'project/exp.yaml'], ['results', 'project/exp.yaml'], ['gc', 'project/exp.yaml'], ['runs'], ['validate', 'project/exp.yaml']]) {
      const result = await rig.run(args);
      assert.notEqual(result.code, 70, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(!existsSync(join(rig.dir, 'project', 'artifacts')), `${args.join(' ')} created project/artifacts`);
      assert.ok(!existsSync(join(rig.dir, 'artifacts')), `${args.join(' ')} created artifacts`);
    }
  });

  it('a command without a pipeline finds the store from the current folder upwards', async () => {
    const rig = await Rig.create();
    await rig.write('project/exp.yaml', PIPELINE);
    assert.equal((await rig.run(['run', 'project/exp.yaml'])).code, 0);
    await mkdir(join(rig.dir, 'project', 'notes', 'deep'), { recursive: true });
    const runs = spawnSync(process.execPath, [CLI, 'runs', '--json'], { cwd: join(rig.dir, 'project', 'notes', 'deep'), encoding: 'utf8', timeout: 60_000 });
    assert.equal(runs.status, 0, runs.stderr);
    assert.equal(runs.stdout.trim().split('\n').filter((l) => l !== '').length, 1, runs.stdout);
  });
});
