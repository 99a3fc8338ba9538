import assert from 'node:assert/strict';
import { readdir, readFile, writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collect, executed, Rig, STAGES } from './support/rig.js';

/** A grid pipeline: prep once, cluster per k (in a worker), seed per k x s, an aggregate of all. */
function grid(rig: Rig, options: { ks?: string; epochs?: number; sleep?: number; extra?: string } = {}): string {
  return `name: grid
params:
  epochs: ${options.epochs ?? 3}
matrix:
  k: ${options.ks ?? '[1, 2]'}
  s: [a, b]
stages:
  prep:
    uses: ${STAGES}/count.mjs
    with: { log: ${rig.log}, value: 1 }
  cluster:
    uses: ${STAGES}/count-heavy.mjs
    needs: [prep]
    with: { log: ${rig.log}, value: "\${{ matrix.k }}", sleep_ms: ${options.sleep ?? 0} }
  seed:
    uses: ${STAGES}/count.mjs
    needs: [cluster]
    with: { log: ${rig.log}, value: "\${{ matrix.s }}" }
  train:
    uses: ${STAGES}/count.mjs
    needs: [seed]
    with: { log: ${rig.log}, value: "\${{ params.epochs }}" }
  table:
    uses: aggregate
    needs: [train]
${options.extra ?? ''}`;
}

describe('engine', () => {
  it('a second run executes nothing', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const first = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(executed(first).length, 1 + 2 + 4 + 4 + 1);
    const second = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(executed(second), []);
    assert.equal((await rig.invocations()).length, 11);
  });

  it('the matrix expands each stage over only the axes it uses: cluster runs once per k, shared by every s', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const result = await rig.run(['run', 'p.yaml', '--json']);
    const cluster = executed(result).filter((id) => id.startsWith('cluster'));
    assert.deepEqual(cluster, ['cluster[k=1]', 'cluster[k=2]']);
  });

  it('changing one matrix value reruns only the instances it touches', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    await rig.run(['run', 'p.yaml']);
    await rig.write('p.yaml', grid(rig, { ks: '[1, 3]' }));
    const plan = await rig.run(['plan', 'p.yaml', '--json']);
    const toRun = plan.events.flatMap((e) => (e.event === 'instance' && e.status === 'run' ? [e.id] : [])).sort();
    assert.deepEqual(toRun, ['cluster[k=3]', 'seed[k=3 s=a]', 'seed[k=3 s=b]', 'table', 'train[k=3 s=a]', 'train[k=3 s=b]']);
    const second = await rig.run(['run', 'p.yaml', '--json']);
    assert.deepEqual(executed(second), toRun);
  });

  it('changing a downstream param reruns train and the table but not prep, cluster or seed', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    await rig.run(['run', 'p.yaml']);
    const second = await rig.run(['run', 'p.yaml', '--json', '--set', 'epochs=7']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(executed(second), ['table', 'train[k=1 s=a]', 'train[k=1 s=b]', 'train[k=2 s=a]', 'train[k=2 s=b]']);
  });

  it('a parameter the stage type declares untracked does not rerun it', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig, { sleep: 0 }));
    await rig.run(['run', 'p.yaml']);
    await rig.write('p.yaml', grid(rig, { sleep: 5 }));
    const second = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(executed(second), []);
  });

  it('plan says why each instance will run', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const fresh = await rig.run(['plan', 'p.yaml']);
    assert.match(fresh.stdout, /prep\s+-\s+[0-9a-f]{10}\s+will run: new/);
    await rig.run(['run', 'p.yaml']);
    const changed = await rig.run(['plan', 'p.yaml', '--set', 'epochs=5']);
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /prep\s+-\s+[0-9a-f]{10}\s+cached/);
    assert.match(changed.stdout, /train\s+k=1 s=a\s+[0-9a-f]{10}\s+will run: param value changed \(3 → 5\)/);
    assert.match(changed.stdout, /table\s+-\s+[0-9a-f]{10}\s+will run: input train\[k=1 s=a\], .* changed/);
    const forced = await rig.run(['plan', 'p.yaml', '--force', 'seed']);
    assert.match(forced.stdout, /seed\s+k=1 s=a\s+[0-9a-f]{10}\s+will run: forced/);
    assert.match(forced.stdout, /train\s+k=1 s=a\s+[0-9a-f]{10}\s+will run: forced upstream \(seed\)/);
    assert.match(forced.stdout, /cluster\s+k=1\s+[0-9a-f]{10}\s+cached/);
  });

  it('--force reruns the stage and what depends on it; --only runs a stage with what it needs', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const only = await rig.run(['run', 'p.yaml', '--json', '--only', 'cluster']);
    assert.deepEqual(executed(only), ['cluster[k=1]', 'cluster[k=2]', 'prep']);
    await rig.run(['run', 'p.yaml']);
    const forced = await rig.run(['run', 'p.yaml', '--json', '--force', 'train']);
    assert.deepEqual(executed(forced), ['table', 'train[k=1 s=a]', 'train[k=1 s=b]', 'train[k=2 s=a]', 'train[k=2 s=b]']);
    const unknown = await rig.run(['run', 'p.yaml', '--only', 'trian']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no stage "trian"/);
  });

  it('two independent sleeping stages with --jobs 2 overlap in time', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: sleepers
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: a, sleep_ms: 600 } }
  b: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: b, sleep_ms: 600 } }
  c: { uses: ${STAGES}/count-heavy.mjs, with: { log: ${rig.log}, value: c, sleep_ms: 600 } }
  d: { uses: ${STAGES}/count-heavy.mjs, with: { log: ${rig.log}, value: d, sleep_ms: 600 } }
`);
    const result = await rig.run(['run', 'p.yaml', '--json', '--jobs', '2']);
    assert.equal(result.code, 0, result.stderr);
    const span = (id: string): [number, number] => {
      const start = result.events.find((e) => e.event === 'stage-start' && e.id === id)?.time ?? NaN;
      const end = result.events.find((e) => e.event === 'stage-end' && e.id === id)?.time ?? NaN;
      return [start, end];
    };
    const overlaps = (x: string, y: string): boolean => {
      const [s1, e1] = span(x);
      const [s2, e2] = span(y);
      return s1 < e2 && s2 < e1;
    };
    assert.ok(overlaps('a', 'b'), 'the in-process stages a and b ran one after the other');
    assert.ok(overlaps('c', 'd'), 'the worker stages c and d ran one after the other');
    // Heavy stages ran in two different worker processes, neither of them the CLI.
    const pids = new Set((await rig.invocations()).filter((l) => /^[cd] /.test(l)).map((l) => l.split(' ').pop()));
    assert.equal(pids.size, 2);
  });

  it('two stages that do the same work (same type, params and inputs) run it once', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: twins
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: 1, sleep_ms: 300 } }
  b: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: 1, sleep_ms: 300 } }
  c: { uses: ${STAGES}/count.mjs, needs: [b], with: { log: ${rig.log}, value: 2 } }
`);
    const result = await rig.run(['run', 'p.yaml', '--json', '--jobs', '2']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(executed(result), ['a', 'b', 'c']);
    assert.equal((await rig.invocations()).length, 2, 'the shared work ran twice');
  });

  it('with --jobs 1 nothing overlaps', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: sleepers
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: a, sleep_ms: 200 } }
  b: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: b, sleep_ms: 200 } }
`);
    const result = await rig.run(['run', 'p.yaml', '--json', '--jobs', '1']);
    const starts = result.events.filter((e) => e.event === 'stage-start').map((e) => e.time);
    const ends = result.events.filter((e) => e.event === 'stage-end').map((e) => e.time);
    assert.ok((starts[1] ?? 0) >= (ends[0] ?? Infinity));
  });

  it('a damaged artifact is detected by plan and recomputed by run', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    await rig.run(['run', 'p.yaml']);
    const plan = await rig.run(['plan', 'p.yaml', '--json']);
    const prep = plan.events.find((e) => e.event === 'instance' && e.id === 'cluster[k=1]');
    assert.ok(prep && prep.event === 'instance');
    const dir = join(rig.dir, 'artifacts', 'objects', prep.key.slice(0, 2), prep.key);
    const file = join(dir, 'value.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('"value"', '"VALUE"'));
    const damaged = await rig.run(['plan', 'p.yaml']);
    assert.match(damaged.stdout, /cluster\s+k=1\s+[0-9a-f]{10}\s+will run: artifact damaged \(file value.json does not match its checksum\)/);
    const rerun = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.deepEqual(executed(rerun), ['cluster[k=1]']);
    const warning = rerun.events.find((e) => e.event === 'warning' && e.id === 'cluster[k=1]');
    assert.ok(warning && warning.event === 'warning', 'the run did not say that it recomputed a damaged artifact');
    assert.match(warning.message, /damaged \(file value\.json does not match its checksum\): moved aside and recomputed/);
    assert.equal(await readFile(file, 'utf8'), text);
  });

  it('an input found damaged when a stage starts fails that stage as data, is moved aside, and the next run recomputes it', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const first = await rig.run(['run', 'p.yaml', '--json']);
    const prep = first.events.find((e) => e.event === 'instance' && e.id === 'prep');
    assert.ok(prep && prep.event === 'instance');
    const file = join(rig.dir, 'artifacts', 'objects', prep.key.slice(0, 2), prep.key, 'value.json');
    // Same size and modification time (to the nanosecond, as touch copies it): only hashing, as an executor does before reading, can tell.
    const before = await stat(file);
    const text = await readFile(file, 'utf8');
    const reference = join(rig.dir, 'reference');
    await writeFile(reference, '');
    const { execFileSync } = await import('node:child_process');
    execFileSync('touch', ['-r', file, reference]);
    await writeFile(file, text.replace('"value"', '"VALUE"'));
    execFileSync('touch', ['-r', reference, file]);
    assert.equal((await stat(file)).mtimeMs, before.mtimeMs, 'the test could not restore the modification time');
    const forced = await rig.run(['run', 'p.yaml', '--json', '--force', 'cluster', '--jobs', '1']);
    assert.equal(forced.code, 1, forced.stderr);
    const end = forced.events.find((e) => e.event === 'stage-end' && e.status === 'failed');
    assert.ok(end && end.event === 'stage-end' && end.failure?.reason === 'input-damaged', JSON.stringify(end));
    assert.equal(end.failure.input, 'prep');
    assert.match(end.failure.detail, /file value\.json does not match its checksum/);
    const plan = await rig.run(['plan', 'p.yaml']);
    assert.match(plan.stdout, /prep\s+-\s+[0-9a-f]{10}\s+will run: artifact missing from the store/);
    const again = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(executed(again).includes('prep'));
    assert.equal(await readFile(file, 'utf8'), text);
  });

  for (const [name, text] of ([['null', 'null'], ['an empty object', '{}'], ['a list', '[1]'], ['files of the wrong shape', '{"format":1,"key":"k","stage":"s","type":"t","matrix":{},"files":{"value.json":7}}']] as const)) {
    it(`a manifest that is valid JSON of the wrong shape (${name}) makes the artifact damaged: plan says so and run recomputes it`, async () => {
      const rig = await Rig.create();
      await rig.write('p.yaml', grid(rig));
      const first = await rig.run(['run', 'p.yaml', '--json']);
      const prep = first.events.find((e) => e.event === 'instance' && e.id === 'prep');
      assert.ok(prep && prep.event === 'instance');
      await writeFile(join(rig.dir, 'artifacts', 'objects', prep.key.slice(0, 2), prep.key, 'manifest.json'), text);
      const plan = await rig.run(['plan', 'p.yaml']);
      assert.equal(plan.code, 0, plan.stderr);
      assert.match(plan.stdout, /prep\s+-\s+[0-9a-f]{10}\s+will run: artifact damaged \(manifest malformed: /);
      const rerun = await rig.run(['run', 'p.yaml', '--json']);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.ok(executed(rerun).includes('prep'));
      const again = await rig.run(['plan', 'p.yaml', '--json']);
      assert.ok(again.events.every((e) => e.event !== 'instance' || e.status === 'cached'));
    });
  }

  it('store files of the wrong shape are ignored or named, never a crash: index entries, file hashes, logs', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    await rig.write('artifacts/index/grid.json', JSON.stringify({ prep: { key: 'x' }, 'cluster[k=1]': null, __proto__: 5 }));
    await rig.write('artifacts/file-hashes.json', 'null');
    const plan = await rig.run(['plan', 'p.yaml', '--set', 'epochs=4']);
    assert.equal(plan.code, 0, plan.stderr);
    // The bad entries are forgotten: the instances they named look new, the rest is as before.
    assert.match(plan.stdout, /prep\s+-\s+[0-9a-f]{10}\s+cached/);
    assert.match(plan.stdout, /train\s+k=1 s=a\s+[0-9a-f]{10}\s+will run: new/);
    const { rm } = await import('node:fs/promises');
    await rm(join(rig.dir, 'artifacts', 'logs'), { recursive: true, force: true });
    await rig.write('artifacts/logs', 'not a folder');
    const run = await rig.run(['run', 'p.yaml', '--set', 'epochs=4']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^seedflow: .*logs: cannot be used as the store's log folder \(EEXIST\)\n  hint: /);
    assert.doesNotMatch(run.stderr, /internal error|\n\s+at /);
  });

  it('a deleted manifest makes the artifact count as damaged, never as complete', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const first = await rig.run(['run', 'p.yaml', '--json']);
    const key = first.events.find((e) => e.event === 'instance' && e.id === 'prep');
    assert.ok(key && key.event === 'instance');
    const { rm } = await import('node:fs/promises');
    await rm(join(rig.dir, 'artifacts', 'objects', key.key.slice(0, 2), key.key, 'manifest.json'));
    const rerun = await rig.run(['run', 'p.yaml', '--json']);
    assert.deepEqual(executed(rerun), ['prep']);
  });

  it('killing the run with SIGKILL in the middle of a stage, then running again, completes without redoing finished stages', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig, { sleep: 1500 }));
    const child = rig.spawn(['run', 'p.yaml', '--json', '--jobs', '1']);
    let seen = '';
    await new Promise<void>((resolveWait) => {
      child.stdout?.on('data', (d: Buffer) => {
        seen += d.toString();
        // prep is done and the first cluster is sleeping: kill now.
        if (/"event":"stage-start","time":\d+,"id":"cluster/.test(seen)) resolveWait();
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGKILL');
    await collect(child);
    const before = await rig.invocations();
    assert.ok(before.some((l) => l.startsWith('prep ')), 'prep should have finished before the kill');
    const again = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!executed(again).includes('prep'), 'prep was recomputed');
    assert.ok(executed(again).includes('table'));
    // Every artifact in the store is complete and sound.
    const plan = await rig.run(['plan', 'p.yaml', '--json']);
    assert.ok(plan.events.every((e) => e.event !== 'instance' || e.status === 'cached'), plan.stdout);
    const tmp = await readdir(join(rig.dir, 'artifacts', 'tmp')).catch(() => []);
    assert.deepEqual(tmp, []);
  });

  it('a stage failure stops the run with exit code 1; --keep-going finishes the independent branches', async () => {
    const rig = await Rig.create();
    const pipeline = `name: failing
stages:
  bad: { uses: ${STAGES}/fail.mjs }
  after: { uses: ${STAGES}/count.mjs, needs: [bad], with: { log: ${rig.log} } }
  other: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, sleep_ms: 100 } }
  later: { uses: ${STAGES}/count.mjs, needs: [other], with: { log: ${rig.log} } }
`;
    await rig.write('p.yaml', pipeline);
    const failFast = await rig.run(['run', 'p.yaml', '--json', '--jobs', '2']);
    assert.equal(failFast.code, 1);
    const end = failFast.events.find((e) => e.event === 'stage-end' && e.id === 'bad');
    assert.ok(end && end.event === 'stage-end' && end.status === 'failed' && end.failure?.reason === 'user-error' && end.failure.message === 'this stage always fails' && end.failure.hint === 'it is a test stage', JSON.stringify(end));
    assert.ok(!executed(failFast).includes('later'), 'fail-fast started a new stage after the failure');
    const keepGoing = await rig.run(['run', 'p.yaml', '--json', '--jobs', '2', '--keep-going']);
    assert.equal(keepGoing.code, 1);
    assert.ok(executed(keepGoing).includes('later'), 'keep-going did not finish the independent branch');
    const human = await rig.run(['run', 'p.yaml']);
    assert.match(human.stderr, /✗ bad failed: this stage always fails\n\s+hint: it is a test stage/);
    assert.doesNotMatch(human.stderr, /at .*\.js:\d+/);
  });

  it('a local stage returning a summary of the wrong shape fails as a user error, not a crash', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: bad-summary\nstages:\n  odd: { uses: ${STAGES}/bad-summary.mjs }\n`);
    const result = await rig.run(['run', 'p.yaml']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /✗ odd failed: stage type "bad-summary" returned a summary of the wrong shape: it has fields "accuracy", "seconds" besides metrics, timings and details\n\s+hint: return \{ metrics/);
    assert.doesNotMatch(result.stderr, /internal error|at .*\.js:\d+/);
  });

  it('two runs of one grid on one store at once both finish, and no instance is computed twice', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig, { sleep: 300 }));
    const [a, b] = await Promise.all([rig.run(['run', 'p.yaml', '--json']), rig.run(['run', 'p.yaml', '--json'])]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const lines = await rig.invocations();
    assert.equal(new Set(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).size, lines.length, lines.join('\n'));
    assert.ok(lines.length > 0);
  });

  it('a lock left by a killed process is taken over', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const { hostname } = await import('node:os');
    await rig.write('artifacts/lock', JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), command: 'seedflow run', startedAt: new Date().toISOString() }));
    const result = await rig.run(['run', 'p.yaml']);
    assert.equal(result.code, 0, result.stderr);
  });

  it('right after kill -9 of a run, the next run takes the store over and cleans what the killed one left', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig, { sleep: 30_000 }));
    const first = rig.spawn(['run', 'p.yaml', '--json']);
    const firstDone = collect(first);
    await waitFor(async () => (await rig.invocations()).some((l) => l.startsWith('cluster')));
    await rig.write(`artifacts/index/grid.json.${first.pid ?? 0}.abcd.tmp`, '{');
    await rig.write(`artifacts/file-hashes.json.${first.pid ?? 0}.abcd.tmp`, '{');
    first.kill('SIGKILL');
    // Not waiting for the killed process to be reaped: it may still be a zombie when the next run looks.
    const next = await rig.run(['run', 'p.yaml', '--set', 'epochs=1', '--only', 'prep']);
    assert.equal(next.code, 0, next.stderr);
    await firstDone;
    const leftovers = [...await readdir(join(rig.dir, 'artifacts')), ...await readdir(join(rig.dir, 'artifacts', 'index'))].filter((n) => n.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  });

  it('gc keeps the artifacts of recent --set variants, lists the rest with instance, size and age, and removes them only with --yes', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    await rig.run(['run', 'p.yaml']);
    await rig.run(['run', 'p.yaml', '--set', 'epochs=9']);
    // The variant was run from the command line a moment ago: within the default retention, it is kept.
    const dry = await rig.run(['gc', 'p.yaml']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^0 artifacts \(0 B\) would be removed; kept: what the pipeline reaches now, and what 2 of its runs used in the last 30d/m);
    // Without retention, the variant's five artifacts are garbage, each named by the instance that made it.
    const bare = await rig.run(['gc', 'p.yaml', '--keep-within', '0']);
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /^KEY +INSTANCE +SIZE +MADE$/m);
    const rows = bare.stdout.split('\n').filter((l) => /^[0-9a-f]{10} /.test(l));
    assert.equal(rows.length, 5, bare.stdout);
    assert.ok(rows.every((r) => /^[0-9a-f]{10} +(train|table)\S* .*? +\d+(\.\d)? k?B +\d.* ago$/.test(r)), rows.join('\n'));
    assert.ok(rows.some((r) => / train\[/.test(r)), rows.join('\n'));
    assert.match(bare.stdout, /5 artifacts \(.+\) would be removed/);
    const bad = await rig.run(['gc', 'p.yaml', '--keep-within', 'a week']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--keep-within must be a duration/);
    const gone = await rig.run(['gc', 'p.yaml', '--keep-within', '0', '--yes']);
    assert.match(gone.stdout, /removed 5 artifacts/);
    const plan = await rig.run(['plan', 'p.yaml', '--json']);
    assert.ok(plan.events.every((e) => e.event !== 'instance' || e.status === 'cached'));
    const variant = await rig.run(['plan', 'p.yaml', '--set', 'epochs=9', '--json']);
    assert.equal(variant.events.filter((e) => e.event === 'instance' && e.status !== 'cached').length, 5);
  });

  it('with one job, the ready stage with the longest chain after it starts first, and a cell completes at once', async () => {
    const rig = await Rig.create();
    // Distinct values, or instances with the same inputs would be one piece of work.
    const count = (needs: string, value: string): string => `{ uses: ${STAGES}/count.mjs, needs: [${needs}], with: { log: ${rig.log}, value: ${value} } }`;
    // "short" is listed first, so order of listing alone would start it before "long1".
    await rig.write('p.yaml', `name: order
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log} } }
  short: ${count('a', 's')}
  short-end: ${count('short', 'se')}
  long1: ${count('a', 'l1')}
  long2: ${count('long1', 'l2')}
  long3: ${count('long2', 'l3')}
  table: { uses: aggregate, needs: [long3, short-end] }
`);
    const result = await rig.run(['run', 'p.yaml', '--json', '--jobs', '1']);
    assert.equal(result.code, 0, result.stderr);
    const started = result.events.flatMap((e) => (e.event === 'stage-start' ? [e.id] : []));
    assert.deepEqual(started, ['a', 'long1', 'short', 'short-end', 'long2', 'long3', 'table']);
  });

  it('dag prints Mermaid and DOT', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const mermaid = await rig.run(['dag', 'p.yaml']);
    assert.match(mermaid.stdout, /^flowchart LR/);
    assert.match(mermaid.stdout, /prep --> cluster/);
    assert.match(mermaid.stdout, /cluster\["cluster: .* × k \(2\)"\]/);
    const dot = await rig.run(['dag', 'p.yaml', '--format', 'dot', '--instances']);
    assert.match(dot.stdout, /^digraph "grid"/);
    assert.equal((dot.stdout.match(/->/g) ?? []).length, 2 + 4 + 4 + 4);
  });

  it('the run writes a JSON-lines log in the store', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    await rig.run(['run', 'p.yaml']);
    const logs = await readdir(join(rig.dir, 'artifacts', 'logs'));
    assert.equal(logs.length, 1);
    const lines = (await readFile(join(rig.dir, 'artifacts', 'logs', logs[0] ?? ''), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { event?: string });
    assert.ok(lines.some((l) => l.event === 'run-end'));
    assert.ok(lines.some((l) => l.event === 'stage-end'));
  });

  it('the aggregate table has one row per cell with its matrix values', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', grid(rig));
    const run = await rig.run(['run', 'p.yaml', '--json']);
    const table = run.events.find((e) => e.event === 'instance' && e.id === 'table');
    assert.ok(table && table.event === 'instance');
    const csv = await readFile(join(rig.dir, 'artifacts', 'objects', table.key.slice(0, 2), table.key, 'results.csv'), 'utf8');
    const [header, ...rows] = csv.trim().split('\n');
    assert.equal(rows.length, 4);
    assert.match(header ?? '', /^stage,k,s,/);
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}
