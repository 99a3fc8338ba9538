import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { hostname } from 'node:os';
import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { EVENTS_SCHEMA } from '../src/executor/events-schema.js';
import { collect, executed, Rig, STAGES, type CliResult } from './support/rig.js';

const LOCKER = join(dirname(fileURLToPath(import.meta.url)), 'support', 'locker.js');

/** A pipeline whose first stage waits for `gate/release`, and a stage after it. */
function gated(rig: Rig, name: string): string {
  return `name: ${name}
stages:
  gate: { uses: ${STAGES}/block.mjs, with: { dir: ${join(rig.dir, 'gate')} } }
  after: { uses: ${STAGES}/count.mjs, needs: [gate], with: { log: ${rig.log}, value: 2 } }
`;
}

/** Polls, bounded in time, until a condition holds. */
async function until(check: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function started(rig: Rig): Promise<string[]> {
  return (await readdir(join(rig.dir, 'gate')).catch(() => [] as string[])).filter((n) => n.startsWith('started-'));
}

function release(rig: Rig): Promise<void> {
  return writeFile(join(rig.dir, 'gate', 'release'), '');
}

async function prepare(): Promise<Rig> {
  const rig = await Rig.create();
  await mkdir(join(rig.dir, 'gate'));
  return rig;
}

describe('runs sharing one store', () => {
  it('a different pipeline runs to the end while another run is busy on the store', { timeout: 120_000 }, async () => {
    const rig = await prepare();
    await rig.write('a.yaml', gated(rig, 'a'));
    await rig.write('b.yaml', `name: b\nstages:\n  one: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: 1 } }\n`);
    const a = rig.spawn(['run', 'a.yaml']);
    const aDone = collect(a);
    await until(async () => (await started(rig)).length === 1, 'the first run is inside its gated stage');
    const b = await rig.run(['run', 'b.yaml', '--json']);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(executed(b), ['one']);
    // The first run cannot have ended: its stage waits for the release written only now.
    assert.equal(a.exitCode, null, 'the first run ended before its stage was released');
    await release(rig);
    const aResult = await aDone;
    assert.equal(aResult.code, 0, aResult.stderr);
  });

  it('two runs of one pipeline compute each instance once: the second waits for the first and uses its artifact', { timeout: 120_000 }, async () => {
    const rig = await prepare();
    await rig.write('p.yaml', gated(rig, 'p'));
    const first = rig.spawn(['run', 'p.yaml', '--json']);
    const firstDone = collect(first);
    await until(async () => (await started(rig)).length === 1, 'the first run is inside its gated stage');
    const second = rig.spawn(['run', 'p.yaml', '--json']);
    let out = '';
    second.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const secondDone = collect(second);
    await until(async () => out.includes('"event":"waiting"'), 'the second run says it waits');
    await release(rig);
    const [a, b] = await Promise.all([firstDone, secondDone]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal((await started(rig)).length, 1, 'the gated stage ran twice');
    assert.equal((await rig.invocations()).filter((l) => l.startsWith('after ')).length, 1, 'the stage after it ran twice');
    const ends = (r: CliResult, id: string): string[] => r.events.flatMap((e) => (e.event === 'stage-end' && e.id === id ? [e.status] : []));
    assert.deepEqual(ends(b, 'gate'), ['cached']);
    const waiting = b.events.find((e) => e.event === 'waiting');
    assert.ok(waiting?.event === 'waiting' && waiting.id === 'gate' && waiting.holder.pid === first.pid && waiting.holder.host === hostname(), JSON.stringify(waiting));
    assert.match(b.stderr, /… gate: waiting for process \d+ \("seedflow run p\.yaml"\), which is computing it/);
    // Every event of both streams, the new ones among them, is described by the published schema.
    const validate = new Ajv({ strict: false }).compile(EVENTS_SCHEMA);
    for (const event of [...a.events, ...b.events]) assert.ok(validate(event), `${JSON.stringify(event)}: ${JSON.stringify(validate.errors)}`);
    // Both runs' index entries are kept: a third run finds everything cached.
    const third = await rig.run(['run', 'p.yaml', '--json']);
    assert.equal(third.code, 0, third.stderr);
    assert.deepEqual(executed(third), []);
  });

  it('a claim left by a process that is gone is taken over', async () => {
    const rig = await prepare();
    await rig.write('b.yaml', `name: b\nstages:\n  one: { uses: ${STAGES}/count.mjs, with: { log: ${rig.log}, value: 1 } }\n`);
    const plan = await rig.run(['plan', 'b.yaml', '--json']);
    const instance = plan.events.find((e) => e.event === 'instance');
    assert.ok(instance?.event === 'instance');
    await mkdir(join(rig.dir, 'artifacts', 'claims'), { recursive: true });
    await writeFile(join(rig.dir, 'artifacts', 'claims', instance.key), JSON.stringify({ pid: 2 ** 22 + 4321, host: hostname(), command: 'seedflow run b.yaml', startedAt: '2026-01-01T00:00:00.000Z' }));
    const run = await rig.run(['run', 'b.yaml', '--json']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(executed(run), ['one']);
    assert.ok(!run.events.some((e) => e.event === 'waiting'), 'waited for a dead process');
  });

  it('gc --yes refuses while a run holds the store, and a run refuses while gc holds it', { timeout: 120_000 }, async () => {
    const rig = await prepare();
    await rig.write('p.yaml', gated(rig, 'p'));
    const run = rig.spawn(['run', 'p.yaml']);
    const runDone = collect(run);
    await until(async () => (await started(rig)).length === 1, 'the run is inside its gated stage');
    const gc = await rig.run(['gc', 'p.yaml', '--yes']);
    assert.equal(gc.code, 3, gc.stderr);
    assert.match(gc.stderr, new RegExp(`the store is in use by process ${String(run.pid)}`));
    await release(rig);
    assert.equal((await runDone).code, 0);

    // A process holding the store exclusively, as gc does while it deletes.
    const locker = fork(LOCKER, [join(rig.dir, 'artifacts')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const answer = await new Promise<string>((resolve) => locker.once('message', (m) => resolve(String(m))));
    assert.equal(answer, 'locked');
    const refused = await rig.run(['run', 'p.yaml']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, new RegExp(`the store is in use by process ${String(locker.pid)} .*"locker"`));
    const exited = new Promise((r) => locker.once('exit', r));
    locker.send('release');
    await exited;
    const after = await rig.run(['run', 'p.yaml']);
    assert.equal(after.code, 0, after.stderr);
  });
});
