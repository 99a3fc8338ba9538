import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Store } from '../src/cache/store.js';
import { Random } from '../src/util/random.js';
import { CLI, collect, Rig, STAGES, type CliResult } from './support/rig.js';

/** A tiny pipeline of counting stages: 3 + 3 + 1 instances, light and heavy, so kills land in process and in workers. */
function pipeline(rig: Rig): string {
  return `name: faults
matrix:
  k: [1, 2, 3]
stages:
  a: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: "\${{ matrix.k }}" } }
  b: { uses: ${STAGES}/count-heavy.mjs, needs: [a], with: { log: ${rig.log}, value: b } }
  c: { uses: ${STAGES}/count.mjs, needs: [b], with: { log: ${rig.log}, value: c } }
`;
}

/** Every artifact in the store verifies; returns how many there are. */
async function verifyAll(root: string): Promise<number> {
  const store = new Store(root);
  const keys = await store.keys();
  for (const key of keys) assert.equal(await store.verify(key), null, `artifact ${key} does not verify`);
  return keys.length;
}

/** The plan's key per instance and whether every one is cached. */
async function planned(rig: Rig, store = 'artifacts'): Promise<{ keys: Record<string, string>; allCached: boolean }> {
  const result = await rig.run(['plan', 'p.yaml', '--json', '--store', store]);
  assert.equal(result.code, 0, result.stderr);
  const keys: Record<string, string> = {};
  let allCached = true;
  for (const e of result.events) {
    if (e.event !== 'instance') continue;
    keys[e.id] = e.key;
    if (e.status !== 'cached') allCached = false;
  }
  return { keys, allCached };
}

/** The values the final stage's artifacts hold, by instance: the run's results. */
async function results(rig: Rig, keys: Record<string, string>, store = 'artifacts'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [id, key] of Object.entries(keys)) {
    if (!id.startsWith('c')) continue;
    out[id] = await readFile(join(rig.dir, store, 'objects', key.slice(0, 2), key, 'value.json'), 'utf8');
  }
  return out;
}

function assertNoStack(result: CliResult, what: string): void {
  assert.doesNotMatch(result.stderr, /internal error|\n\s+at .+:\d+:\d+\)?\n/, `${what} printed a stack:\n${result.stderr}`);
}

/**
 * Runs `body` with a 4 MB tmpfs mounted at `small/` in the rig, unmounting it after. Where mounting
 * is not permitted the test is skipped, except in CI, which must be able to.
 */
async function onSmallDisk(rig: Rig, t: TestContext, body: (mountPoint: string) => Promise<void>): Promise<void> {
  const mountPoint = join(rig.dir, 'small');
  await rig.write('small/.keep', '');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mountPoint]);
  if (mounted.status !== 0) {
    assert.notEqual(process.env['CI'], 'true', `CI must be able to mount a tmpfs: ${mounted.stderr.toString()}`);
    t.skip('mounting a tmpfs is not permitted here');
    return;
  }
  try {
    await body(mountPoint);
  } finally {
    spawnSync('umount', [mountPoint]);
  }
}

describe('faults', () => {
  it('SIGKILL of the whole process group at seeded moments never loses or corrupts an artifact, and the next run finishes with a clean run\'s results', async () => {
    const clean = await Rig.create();
    await clean.write('p.yaml', pipeline(clean));
    assert.equal((await clean.run(['run', 'p.yaml', '--jobs', '2'])).code, 0);
    const cleanKeys = (await planned(clean)).keys;
    const expected = await results(clean, cleanKeys);

    const random = new Random(1313);
    const trials = 10;
    for (let trial = 0; trial < trials; trial++) {
      const rig = await Rig.create();
      await rig.write('p.yaml', pipeline(rig));
      // Killed after a seeded number of observed events, never after a delay.
      const after = 1 + random.int(24);
      const child = spawn(process.execPath, [CLI, 'run', 'p.yaml', '--json', '--jobs', '2'], { cwd: rig.dir, detached: true, env: { ...process.env, SEEDFLOW_MODULE_PATH: STAGES }, stdio: ['ignore', 'pipe', 'pipe'] });
      let seen = 0;
      let killed = false;
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString().split('\n').filter((l) => l.startsWith('{')).length;
        if (!killed && seen >= after && child.pid !== undefined) {
          killed = true;
          process.kill(-child.pid, 'SIGKILL');
        }
      });
      const first = await collect(child);
      assert.ok(first.code === 0 || first.code === null, `trial ${trial}: exit ${String(first.code)}\n${first.stderr}`);
      await verifyAll(join(rig.dir, 'artifacts'));
      const again = await rig.run(['run', 'p.yaml', '--jobs', '2']);
      assert.equal(again.code, 0, `trial ${trial}: the run after the kill failed:\n${again.stderr}`);
      assert.equal(await verifyAll(join(rig.dir, 'artifacts')), 9, `trial ${trial}`);
      const { keys, allCached } = await planned(rig);
      assert.deepEqual(Object.keys(keys), Object.keys(cleanKeys), `trial ${trial}`);
      assert.ok(allCached, `trial ${trial}: not everything is cached after the second run`);
      assert.deepEqual(await results(rig, keys), expected, `trial ${trial}`);
      const leftovers = (await readdir(join(rig.dir, 'artifacts', 'index'))).filter((f) => f.endsWith('.tmp'));
      assert.deepEqual(leftovers, [], `trial ${trial}: temporary files left`);
    }
    console.log(`faults: ${trials} SIGKILL trials, each recovered to a clean run's results`);
  });

  it('each kind of damaged store file is a warning and a recomputation or a clear error, never a crash', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig));
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const { keys, allCached } = await planned(rig);
    assert.ok(allCached);
    const expected = await results(rig, keys);
    const root = join(rig.dir, 'artifacts');
    const objectDir = (key: string): string => join(root, 'objects', key.slice(0, 2), key);
    const damages: [string, () => Promise<void>][] = [
      ['a manifest holding null', () => writeFile(join(objectDir(keys['b[k=1]'] ?? ''), 'manifest.json'), 'null')],
      ['a manifest holding {}', () => writeFile(join(objectDir(keys['a[k=2]'] ?? ''), 'manifest.json'), '{}')],
      ['an output file changed', () => writeFile(join(objectDir(keys['c[k=3]'] ?? ''), 'value.json'), '{"value":"forged"}')],
      ['an output file removed', () => rm(join(objectDir(keys['a[k=1]'] ?? ''), 'value.json'))],
      ['file-hashes.json holding null', () => writeFile(join(root, 'file-hashes.json'), 'null')],
      ['an index entry without its record', () => writeFile(join(root, 'index', 'faults.json'), JSON.stringify({ 'a[k=1]': {} }))],
      ['an index that is not JSON', () => writeFile(join(root, 'index', 'faults.json'), '{"a[')],
      ['a lock of the wrong shape', () => writeFile(join(root, 'lock'), '[1, 2, 3]')],
    ];
    for (const [what, damage] of damages) {
      await damage();
      const run = await rig.run(['run', 'p.yaml']);
      assertNoStack(run, what);
      if (what.startsWith('a lock')) {
        // A malformed lock younger than its grace is taken as being written: the run waits out the grace, or refuses with exit 3 and says where it is.
        assert.ok(run.code === 0 || run.code === 3, `${what}: exit ${String(run.code)}\n${run.stderr}`);
        if (run.code === 3) {
          assert.match(run.stderr, /lock/);
          await rm(join(root, 'lock'));
          assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
        }
      } else {
        assert.equal(run.code, 0, `${what}:\n${run.stderr}`);
      }
      assert.equal(await verifyAll(root), 9, what);
      assert.deepEqual(await results(rig, keys), expected, what);
    }

    await writeFile(join(root, 'history.sqlite'), 'this is not a database');
    await rm(join(root, 'history.sqlite-wal'), { force: true });
    await rm(join(root, 'history.sqlite-shm'), { force: true });
    for (const args of [['runs'], ['compare', 'latest', 'latest~1']]) {
      const result = await rig.run(args);
      assertNoStack(result, args.join(' '));
      assert.equal(result.code, 2, `${args.join(' ')}:\n${result.stderr}`);
      assert.match(result.stderr, /history\.sqlite: cannot read the run history/);
    }
    const run = await rig.run(['run', 'p.yaml']);
    assertNoStack(run, 'run with a damaged history');
    assert.equal(run.code, 0, run.stderr);
    console.log(`faults: ${damages.length + 1} kinds of damaged store file`);
  });

  it('two runs at once on one store both finish, sharing the work, with every artifact sound', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig));
    const [one, two] = await Promise.all([rig.run(['run', 'p.yaml', '--wait']), rig.run(['run', 'p.yaml', '--wait'])]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(await verifyAll(join(rig.dir, 'artifacts')), 9);
    assert.ok((await planned(rig)).allCached);
  });

  it('a full disk under the store gives a clear message, no stack, and a later run with space completes', async (t) => {
    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig));
    await onSmallDisk(rig, t, async (mountPoint) => {
      // Fill the file system, then run on it.
      const filler = join(mountPoint, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k', 'count=1000']);
      for (const command of [['plan', 'p.yaml', '--store', 'small/store'], ['run', 'p.yaml', '--store', 'small/store']]) {
        const result = await rig.run(command);
        assertNoStack(result, command.join(' '));
        assert.ok(result.code === 0 || result.code === 1 || result.code === 2, `${command.join(' ')} on a full disk: exit ${String(result.code)}\n${result.stderr}`);
      }
      await rm(filler);
      const run = await rig.run(['run', 'p.yaml', '--store', 'small/store']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(await verifyAll(join(mountPoint, 'store')), 9, run.stderr);
    });
  });

  it('a disk that fills while a stage writes its output fails that stage with the reason, exit 2, and nothing half-published', async (t) => {
    const rig = await Rig.create();
    // A stage that writes `mb` megabytes into its output: more than the disk has left.
    await rig.write('big.mjs', `import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
export const stage = { name: 'big', version: 1, schema: { type: 'object', properties: { mb: { type: 'number' } } },
  async run(_inputs, params, ctx) { await writeFile(join(ctx.outDir, 'big.bin'), Buffer.alloc(params.mb * 1048576, 7)); return { metrics: {}, timings: {} }; } };
`);
    await rig.write('p.yaml', `name: big\nstages:\n  first: { uses: ${STAGES}/count.mjs, with: { log: invocations.log, value: 1 } }\n  big: { uses: ./big.mjs, needs: [first], with: { mb: 3 } }\n`);
    await onSmallDisk(rig, t, async (mountPoint) => {
      // 2 MB taken: room for the store's own files and the first stage, not for the 3 MB output.
      const filler = join(mountPoint, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'count=32']);
      const result = await rig.run(['run', 'p.yaml', '--store', 'small/store', '--json']);
      assertNoStack(result, 'run on a disk that fills');
      assert.equal(result.code, 2, result.stderr);
      const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'big');
      assert.ok(end?.event === 'stage-end' && end.failure?.reason === 'disk', JSON.stringify(end));
      assert.match(result.stderr, /big failed: no space left on the device[\s\S]*hint: free some space/);
      assert.match(result.stderr, /seedflow: no space left on the device; the run stopped/);
      assert.equal(result.events.find((e) => e.event === 'stage-end' && e.id === 'first')?.event, 'stage-end');
      assert.equal(await verifyAll(join(mountPoint, 'store')), 1, 'only the first stage\'s artifact is published, and it verifies');
      await rm(filler);
      const again = await rig.run(['run', 'p.yaml', '--store', 'small/store', '--json']);
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(again.events.flatMap((e) => (e.event === 'stage-end' ? [e.id] : [])), ['big']);
      assert.equal(await verifyAll(join(mountPoint, 'store')), 2);
    });
  });
});
