import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, collect, Rig, STAGES } from './support/rig.js';

/** A pipeline whose `loop` stage repeats in rounds over two batch sizes, fed by `start` and feeding `after`. */
function pipeline(rig: Rig, rounds: string | number = '${{ params.n }}', extra = ''): string {
  return `name: r
params: { n: 3 }
matrix: { b: [1, 2] }
${extra}
stages:
  start: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log} } }
  loop:
    uses: ${STAGES}/rounds.mjs
    needs: [start]
    rounds: ${typeof rounds === 'number' ? rounds : JSON.stringify(rounds)}
    with: { log: ${rig.log}, batch: "\${{ matrix.b }}" }
  after: { uses: ${STAGES}/count.mjs, needs: [loop], with: { log: ${rig.log} } }
  all: { uses: aggregate, needs: [loop] }
`;
}

/** The plan's instances: id, key and whether it is cached. */
async function planned(rig: Rig, args: readonly string[] = []): Promise<{ id: string; key: string; cached: boolean }[]> {
  const result = await rig.run(['plan', 'p.yaml', '--json', ...args]);
  assert.equal(result.code, 0, result.stderr);
  return result.events.flatMap((e) => (e.event === 'instance' ? [{ id: e.id, key: e.key, cached: e.status === 'cached' }] : []));
}

/** The `state.json` of one instance of `loop`, read through the store. */
async function state(rig: Rig, key: string): Promise<{ round: number; chain: number[]; previousStage: string | null; previousRound: number | null; labels: number; upstream: string[] }> {
  return JSON.parse(await readFile(join(rig.dir, 'artifacts', 'objects', key.slice(0, 2), key, 'state.json'), 'utf8')) as never;
}

/** The rounds of `loop` executed, as "b/round", in log order. */
async function loopsRun(rig: Rig): Promise<string[]> {
  return (await rig.invocations()).filter((l) => l.startsWith('loop ')).map((l) => {
    const m = JSON.parse(l.split(' ')[1] ?? '{}') as { b: number; round: number };
    return `${m.b}/${m.round}`;
  });
}

describe('rounds', () => {
  it('expands a repeating stage into one instance per round, each needing only the round before it, and shows them in plan and dag', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig));
    const ids = (await planned(rig)).map((i) => i.id);
    assert.deepEqual(ids.filter((i) => i.startsWith('loop')), ['loop[b=1 round=1]', 'loop[b=1 round=2]', 'loop[b=1 round=3]', 'loop[b=2 round=1]', 'loop[b=2 round=2]', 'loop[b=2 round=3]']);
    // A stage fed by rounds is expanded over them too, round by round; a gathering one takes them all.
    assert.equal(ids.filter((i) => i.startsWith('after[')).length, 6);
    assert.ok(ids.includes('all'));
    const dag = await rig.run(['dag', 'p.yaml', '--instances']);
    assert.equal(dag.code, 0, dag.stderr);
    const node = (id: string): string => /\s(n\d+)\["([^"]*)"\]/g.exec(dag.stdout.split('\n').find((l) => l.includes(`"${id}"`)) ?? '')?.[1] ?? '';
    const edges = dag.stdout.split('\n').filter((l) => l.includes('-->')).map((l) => l.trim());
    assert.ok(edges.includes(`${node('loop[b=1 round=1]')} --> ${node('loop[b=1 round=2]')}`), dag.stdout);
    assert.ok(!edges.includes(`${node('loop[b=1 round=1]')} --> ${node('loop[b=1 round=3]')}`), 'round 3 needs only round 2');
    const stages = await rig.run(['dag', 'p.yaml']);
    assert.match(stages.stdout, /loop: \S*rounds\.mjs × b, round \(6\), 3 rounds/);
    assert.match(stages.stdout, /loop --> loop/);
  });

  it('gives each round the previous round of its own cell and nothing else of its own stage', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig));
    const run = await rig.run(['run', 'p.yaml']);
    assert.equal(run.code, 0, run.stderr);
    for (const { id, key } of (await planned(rig)).filter((i) => i.id.startsWith('loop'))) {
      const s = await state(rig, key);
      const b = Number(/b=(\d)/.exec(id)?.[1]);
      assert.deepEqual(s.chain, Array.from({ length: s.round }, (_, i) => i + 1), id);
      assert.equal(s.previousRound, s.round === 1 ? null : s.round - 1, id);
      assert.equal(s.previousStage, s.round === 1 ? null : 'loop', id);
      assert.deepEqual(s.upstream, ['start'], `${id}: the declared needs, not the stage's own rounds`);
      assert.equal(s.labels, 10 + (s.round - 1) * b, id);
    }
  });

  it('raising the rounds reuses the rounds already run and runs only the new ones; the keys of earlier rounds do not change', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig));
    const before = await planned(rig);
    assert.equal((await rig.run(['run', 'p.yaml'])).code, 0);
    const first = await loopsRun(rig);
    assert.deepEqual([...first].sort(), ['1/1', '1/2', '1/3', '2/1', '2/2', '2/3']);
    const after = await planned(rig, ['--set', 'n=5']);
    // The gathering stage takes every round, so it alone changes.
    for (const { id, key } of before.filter((i) => i.id !== 'all')) {
      const same = after.find((i) => i.id === id);
      assert.equal(same?.key, key, `${id} keeps its key`);
      assert.equal(same?.cached, true, id);
    }
    const more = await rig.run(['run', 'p.yaml', '--set', 'n=5']);
    assert.equal(more.code, 0, more.stderr);
    assert.deepEqual((await loopsRun(rig)).slice(first.length).sort(), ['1/4', '1/5', '2/4', '2/5']);
  });

  it('a SIGKILL in the middle of a round resumes at that round, and the results match an uninterrupted run', async () => {
    const clean = await Rig.create();
    await clean.write('p.yaml', pipeline(clean, 5));
    assert.equal((await clean.run(['run', 'p.yaml'])).code, 0);
    const expected = await Promise.all((await planned(clean)).filter((i) => i.id.startsWith('loop')).map(async (i) => ({ id: i.id, labels: (await state(clean, i.key)).labels })));

    const rig = await Rig.create();
    await rig.write('p.yaml', pipeline(rig, 5));
    // Round 3 reports progress and then waits: the run is killed on that event, in the middle of round 3.
    const child = spawn(process.execPath, [CLI, 'run', 'p.yaml', '--json', '--jobs', '1'], { cwd: rig.dir, detached: true, env: { ...process.env, SEEDFLOW_MODULE_PATH: STAGES, ROUNDS_HOLD: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let killed = false;
    let buffer = '';
    child.stdout.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (killed || !line.startsWith('{')) continue;
        const event = JSON.parse(line) as { event: string; id?: string };
        if (event.event === 'progress' && event.id?.startsWith('loop[') === true && child.pid !== undefined) {
          killed = true;
          process.kill(-child.pid, 'SIGKILL');
        }
      }
    });
    const first = await collect(child);
    assert.ok(killed, `the run was never held in round 3:\n${first.stderr}`);
    assert.equal(first.code, null);
    const ranBefore = await loopsRun(rig);
    assert.ok(ranBefore.includes('1/3') || ranBefore.includes('2/3'), ranBefore.join(' '));
    assert.ok(!ranBefore.some((r) => r.endsWith('/4') || r.endsWith('/5')), 'no round after the held one started');
    const done = new Set(ranBefore.filter((r) => !r.endsWith('/3')));

    const again = await rig.run(['run', 'p.yaml']);
    assert.equal(again.code, 0, again.stderr);
    const resumed = (await loopsRun(rig)).slice(ranBefore.length);
    for (const r of resumed) assert.ok(!done.has(r), `round ${r} finished before the kill and ran again`);
    assert.deepEqual([...done, ...resumed].sort(), ['1/1', '1/2', '1/3', '1/4', '1/5', '2/1', '2/2', '2/3', '2/4', '2/5']);
    const got = await Promise.all((await planned(rig)).filter((i) => i.id.startsWith('loop')).map(async (i) => ({ id: i.id, labels: (await state(rig, i.key)).labels })));
    assert.deepEqual(got, expected);
  });

  it('refuses a matrix axis named round, a swept or malformed count, and rounds that nest or pair unevenly, each at its place', async () => {
    const rig = await Rig.create();
    const cases: { text: string; args?: string[]; message: RegExp }[] = [
      { text: pipeline(rig).replace('matrix: { b: [1, 2] }', 'matrix: { b: [1, 2], round: [1] }'), message: /matrix axis "round" clashes with the rounds' axis/ },
      // Reserved without rounds too: results would read the axis as rounds.
      { text: `name: p\nmatrix: { round: [1, 2] }\nstages:\n  one: { uses: ${STAGES}/count.mjs, with: { log: x, value: "\${{ matrix.round }}" } }\n`, message: /matrix axis "round" clashes with the rounds' axis/ },
      { text: pipeline(rig), args: ['--set', 'n=3,4'], message: /rounds reads param "n", which --set sweeps/ },
      { text: pipeline(rig), args: ['--set', 'n=0'], message: /rounds \(param "n"\) must be a whole number from 1 to 1000, got 0/ },
      { text: pipeline(rig), args: ['--set', 'n=2.5'], message: /must be a whole number from 1 to 1000, got 2.5/ },
      { text: pipeline(rig, 1001), message: /rounds/ },
      { text: pipeline(rig, '${{ params.m }}'), message: /undefined param "m"/ },
      { text: pipeline(rig, '${{ matrix.b }}'), message: /rounds must be a count or/ },
      {
        text: `${pipeline(rig)}  inner: { uses: ${STAGES}/rounds.mjs, needs: [loop], rounds: 2, with: { log: x } }\n`,
        message: /stage "inner" repeats in rounds but needs "loop", which already repeats in rounds/,
      },
      {
        text: `${pipeline(rig)}  other: { uses: ${STAGES}/rounds.mjs, rounds: 2, with: { log: x } }\n  both: { uses: ${STAGES}/count.mjs, needs: [loop, other], with: { log: x } }\n`,
        message: /stage "both" needs stages that repeat over different numbers of rounds \("loop": 3, "other": 2\)/,
      },
    ];
    for (const { text, args, message } of cases) {
      await rig.write('p.yaml', text);
      const result = await rig.run(['validate', 'p.yaml', ...(args ?? [])]);
      assert.equal(result.code, 2, `${message}: exit ${String(result.code)}\n${result.stdout}${result.stderr}`);
      assert.match(result.stderr, message);
      assert.match(result.stderr, /p\.yaml:\d+:\d+ error/);
      assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+\)?\n/);
    }
  });
});
