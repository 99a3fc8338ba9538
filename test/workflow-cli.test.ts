import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selects } from '../src/plan/states.js';
import { Rig, STAGES } from './support/rig.js';

const PIPELINE = `name: small
params: { v: 1 }
matrix: { k: [10, 30], s: [a, b] }
stages:
  cluster: { uses: ${STAGES}/count.mjs, with: { log: invocations.log, value: "\${{ matrix.k }}" } }
  seed: { uses: ${STAGES}/count.mjs, needs: [cluster], with: { log: invocations.log, value: "\${{ matrix.s }}" } }
`;

describe('the small defects of the daily loop', () => {
  it('run --help prints the help of run, and help plan that of plan', async () => {
    const rig = await Rig.create();
    const run = await rig.run(['run', '--help']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: seedflow run <pipeline> /);
    assert.match(run.stdout, /--keep-going/);
    assert.doesNotMatch(run.stdout, /--cell/);
    const plan = await rig.run(['help', 'plan']);
    assert.match(plan.stdout, /^Usage: seedflow plan <pipeline> /);
  });

  it('a mistyped command gets a suggestion', async () => {
    const rig = await Rig.create();
    const result = await rig.run(['rnu', 'p.yaml']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command "rnu" \(did you mean "run"\?\)/);
  });

  it('--only and --force take instances and matrix values, not only stage ids', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const only = await rig.run(['run', 'p.yaml', '--only', 'cluster[k=30]', '--json']);
    assert.equal(only.code, 0, only.stderr);
    assert.deepEqual((await rig.invocations()).map((l) => l.split(' ').slice(0, 2).join(' ')), ['cluster {"k":30}']);
    const plan = await rig.run(['plan', 'p.yaml', '--only', 'k=30', '--force', 'seed[s=b]', '--json']);
    assert.equal(plan.code, 0, plan.stderr);
    const states = Object.fromEntries(plan.events.flatMap((e) => (e.event === 'instance' ? [[e.id, `${e.status} ${e.reasons.join(',')}`]] : [])));
    assert.deepEqual(states, {
      'cluster[k=10]': 'not-selected not selected by --only',
      'cluster[k=30]': 'cached ',
      'seed[k=10 s=a]': 'not-selected not selected by --only',
      'seed[k=10 s=b]': 'not-selected not selected by --only',
      'seed[k=30 s=a]': 'run new',
      'seed[k=30 s=b]': 'run forced',
    });
    const bad = await rig.run(['plan', 'p.yaml', '--only', 'k=20']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--only k=20: no stage "k=20" and no instance matches it/);
  });

  it('under --only, the run\'s first and last lines count the same instances', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const only = await rig.run(['run', 'p.yaml', '--only', 'cluster']);
    assert.equal(only.code, 0, only.stderr);
    assert.match(only.stderr, /small: 2 of 6 instances selected \(--only\), 0 cached, 2 to run/);
    assert.match(only.stderr, /success in .*: 2 ran, 0 cached, 0 failed, 0 skipped/);
    const again = await rig.run(['run', 'p.yaml', '--only', 'cluster']);
    assert.match(again.stderr, /small: 2 of 6 instances selected \(--only\), 2 cached, 0 to run/);
    assert.match(again.stderr, /success in .*: 0 ran, 2 cached, 0 failed, 0 skipped/);
  });

  it('plan says that an instance failed or was skipped in the last run instead of calling it new', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `${PIPELINE}  bad: { uses: ${STAGES}/fail.mjs, needs: [seed] }\n  after: { uses: ${STAGES}/count.mjs, needs: [bad], with: { log: invocations.log, value: 1 } }\n`);
    const run = await rig.run(['run', 'p.yaml', '--keep-going', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const id = run.events.find((e) => e.event === 'run-start');
    assert.ok(id?.event === 'run-start');
    const plan = await rig.run(['plan', 'p.yaml', '--json']);
    const reasons = Object.fromEntries(plan.events.flatMap((e) => (e.event === 'instance' && e.status === 'run' ? [[e.id, e.reasons.join(', ')]] : [])));
    assert.equal(reasons['bad[k=10 s=a]'], `failed in the last run, ${id.run}: this stage always fails`);
    assert.equal(reasons['after[k=30 s=b]'], `skipped in the last run, ${id.run}: not run: bad[k=30 s=b] did not complete`);
    assert.equal(Object.keys(reasons).length, 8);
    // Once the stage is changed, the reason is the change, not the old failure.
    await rig.write('p.yaml', `${PIPELINE}  bad: { uses: ${STAGES}/fail.mjs, needs: [seed], with: { user: false } }\n  after: { uses: ${STAGES}/count.mjs, needs: [bad], with: { log: invocations.log, value: 1 } }\n`);
    const edited = await rig.run(['plan', 'p.yaml', '--json']);
    const changed = edited.events.find((e) => e.event === 'instance' && e.id === 'bad[k=10 s=a]');
    assert.ok(changed?.event === 'instance' && changed.status === 'run');
    assert.doesNotMatch(changed.reasons.join(), /last run/);
  });

  it('run --json still writes readable lines to stderr, and --verbose names what happens to each instance', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', PIPELINE);
    const json = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.match(json.stderr, /seedflow: success in /);
    const verbose = await rig.run(['run', 'p.yaml', '--verbose', '--set', 'k=[10, 20]']);
    assert.equal(verbose.code, 0, verbose.stderr);
    assert.match(verbose.stderr, /· cluster\[k=20\]: will run \(new\)/);
    assert.match(verbose.stderr, /· cluster\[k=10\]: cached/);
    assert.doesNotMatch(verbose.stderr, /debug: instance$/m);
  });

  it('the hint to finish a run keeps the user\'s --store and --set', async () => {
    const rig = await Rig.create();
    await rig.write('cell.mjs', `export const stage = { name: 'cell', version: 1, role: 'evaluation', schema: { type: 'object' }, async run() { return { metrics: { accuracy: 1 }, timings: {} }; } };\n`);
    await rig.write('p.yaml', 'name: hint\nparams: { v: 1 }\nstages:\n  cell: { uses: ./cell.mjs, with: { v: "${{ params.v }}" } }\n');
    const result = await rig.run(['results', 'p.yaml', '--store', 'my store', '--set', 'v=2']);
    assert.match(result.stderr, /run `seedflow run p\.yaml --store 'my store' --set v=2` to compute them/, result.stderr);
  });
});

describe('selectors of --only and --force', () => {
  const instance = { id: 'seed[k=30 s=b]', stage: 'seed', matrix: { k: 30, s: 'b' } };
  const table: readonly [string, boolean][] = [
    ['seed', true], ['cluster', false], ['seed[k=30 s=b]', true], ['seed[k=30]', true], ['seed[k=10]', false],
    ['k=30', true], ['k=30 s=b', true], ['k=30 s=a', false], ['cluster[k=30]', false], ['s=b', true],
  ];
  for (const [selector, expected] of table) {
    it(`"${selector}" ${expected ? 'selects' : 'does not select'} seed[k=30 s=b]`, () => {
      assert.equal(selects(selector, instance), expected);
    });
  }
});
