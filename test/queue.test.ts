import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, symlink, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Store } from '../src/cache/store.js';
import { RunHistory } from '../src/history/history.js';
import { collect, executed, Rig, STAGES, type CliResult } from './support/rig.js';
import { freePort, startRedis, until, type RedisServer } from './support/redis.js';
import { writeTinyIdx, tinyPipeline } from './support/tiny-data.js';

/** A `seedflow worker` this test started, and the output it printed so far. */
interface WorkerProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
}

const started: ChildProcess[] = [];
const servers: RedisServer[] = [];

/** Starts a worker on `store` (as this worker sees it) and waits until it takes tasks. */
async function startWorker(rig: Rig, url: string, store: string, name: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
  const child = rig.spawn(['worker', '--queue', url, '--store', store, '--jobs', '1', '--name', name], { SEEDFLOW_QUEUE_LOCK: '1s', ...env });
  started.push(child);
  let text = '';
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  child.stdout?.resume();
  await until(`worker ${name} to start`, () => text.includes('taking tasks') || child.exitCode !== null);
  assert.equal(child.exitCode, null, `worker ${name} exited: ${text}`);
  return { child, output: () => text };
}

/** Stops a process this test started: SIGTERM, then SIGKILL if it has not exited within 10 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Every artifact a run's events name, checked against its checksums. */
async function verifyAll(storeDir: string, result: CliResult): Promise<string[]> {
  const store = new Store(storeDir);
  const problems: string[] = [];
  for (const event of result.events) {
    if (event.event !== 'stage-end' || event.status !== 'done') continue;
    const detail = await store.verify(event.key);
    if (detail !== null) problems.push(`${event.id}: ${detail}`);
  }
  return problems;
}

/** Splits one CSV line into its fields, keeping quoted fields whole. */
function fields(line: string): string[] {
  return line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)?.map((f) => f.replace(/,$/, '')).slice(0, -1) ?? [];
}

/**
 * A results.csv without its timing columns (`<type>.<name>Seconds`, measured afresh by every run,
 * local or not): every other byte must be the same.
 */
function withoutTimings(text: string): string {
  const lines = text.split('\n');
  const header = fields(lines[0] ?? '');
  const keep = header.map((name) => !name.endsWith('Seconds'));
  assert.ok(keep.some((k) => !k), 'no timing column found');
  return lines.map((line) => (line === '' ? line : fields(line).filter((_, i) => keep[i]).join(','))).join('\n');
}

async function markers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith('started-')).sort();
}

const block = join(STAGES, 'block.mjs');
const count = join(STAGES, 'count.mjs');

describe('running on a BullMQ queue with real redis-server and seedflow worker processes', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis((await Rig.create()).dir);
    servers.push(redis);
  });
  after(async () => {
    await Promise.all(started.map(stop));
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('runs a tiny grid on two workers that see the store through different paths, with results.csv byte-identical to a local run', async () => {
    const rig = await Rig.create();
    await writeTinyIdx(join(rig.dir, 'data'));
    await rig.write('tiny.yaml', tinyPipeline(join(rig.dir, 'data'), { epochs: 1 }));
    await mkdir(join(rig.dir, 'shared'));
    await symlink(join(rig.dir, 'shared'), join(rig.dir, 'view-a'));
    await symlink(join(rig.dir, 'shared'), join(rig.dir, 'view-b'));
    await startWorker(rig, redis.url, join(rig.dir, 'view-a'), 'alpha');
    await startWorker(rig, redis.url, join(rig.dir, 'view-b'), 'beta');
    const queued = await rig.run(['run', 'tiny.yaml', '--store', 'shared', '--executor', 'bullmq', '--queue', redis.url, '--jobs', '2', '--json']);
    assert.equal(queued.code, 0, queued.stderr);
    const local = await rig.run(['run', 'tiny.yaml', '--store', 'local', '--jobs', '2', '--json']);
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(executed(queued), executed(local));
    const ends = queued.events.flatMap((e) => (e.event === 'stage-end' && e.status === 'done' ? [e] : []));
    assert.ok(ends.every((e) => e.worker === 'alpha' || e.worker === 'beta'), 'every instance names the worker that ran it');
    const results = ends.find((e) => e.stage === 'results');
    assert.ok(results !== undefined);
    const csv = async (root: string): Promise<string> => withoutTimings(await readFile(join(rig.dir, root, 'objects', results.key.slice(0, 2), results.key, 'results.csv'), 'utf8'));
    const [shared, own] = [await csv('shared'), await csv('local')];
    assert.ok(shared.split('\n').length >= 8 && shared.includes('accuracy'), shared);
    assert.equal(shared, own, 'results.csv differs between the queue and the local run');
    assert.deepEqual(await verifyAll(join(rig.dir, 'shared'), queued), []);
    // The history, like the events, says which worker ran each instance.
    const history = RunHistory.open(join(rig.dir, 'shared'), { create: false });
    assert.ok(history !== null);
    const [latest] = history.runs();
    const rows = history.stages(latest?.id ?? '');
    history.close();
    assert.equal(rows.length, ends.length);
    assert.ok(rows.every((r) => r.worker === 'alpha' || r.worker === 'beta'), JSON.stringify(rows.map((r) => r.worker)));
  });

  it('runs a stage again on another worker when the one running it is SIGKILLed, exactly once, and publishes nothing half-written', async () => {
    const rig = await Rig.create();
    await mkdir(join(rig.dir, 'marks'));
    await rig.write('p.yaml', `name: kill\nstages:\n  slow: { uses: ${block}, with: { dir: marks } }\n  after: { uses: ${count}, needs: [slow], with: { log: invocations.log } }\n`);
    const one = await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'one');
    const two = await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'two');
    const run = collect(rig.spawn(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']));
    await until('the blocking stage to start', async () => (await markers(join(rig.dir, 'marks'))).length === 1);
    const [first] = await markers(join(rig.dir, 'marks'));
    const victim = [one, two].find((w) => first === `started-${w.child.pid ?? 0}`);
    assert.ok(victim !== undefined, `the stage ran in neither worker (${first ?? ''})`);
    const exited = once(victim.child, 'exit');
    victim.child.kill('SIGKILL');
    await exited;
    await writeFile(join(rig.dir, 'marks', 'release'), '');
    const result = await run;
    assert.equal(result.code, 0, result.stderr);
    const runs = await markers(join(rig.dir, 'marks'));
    assert.equal(runs.length, 2, `expected one re-run, got ${runs.join(', ')}`);
    assert.deepEqual(executed(result), ['after', 'slow']);
    assert.deepEqual(await verifyAll(join(rig.dir, 'artifacts'), result), []);
    assert.equal((await rig.invocations()).length, 1);
  });

  it('lets a worker told to stop with SIGTERM finish the stage it is running, then exit 0', async () => {
    const rig = await Rig.create();
    await mkdir(join(rig.dir, 'marks'));
    await rig.write('p.yaml', `name: term\nstages:\n  slow: { uses: ${block}, with: { dir: marks } }\n`);
    const worker = await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'polite');
    const run = collect(rig.spawn(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']));
    await until('the blocking stage to start', async () => (await markers(join(rig.dir, 'marks'))).length === 1);
    const exited = once(worker.child, 'exit');
    worker.child.kill('SIGTERM');
    await until('the worker to say it is stopping', () => worker.output().includes('stopping'));
    assert.equal(worker.child.exitCode, null, 'the worker left before its stage finished');
    await writeFile(join(rig.dir, 'marks', 'release'), '');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, worker.output());
    const result = await run;
    assert.equal(result.code, 0, result.stderr);
    const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'slow');
    assert.ok(end?.event === 'stage-end' && end.worker === 'polite');
    assert.equal((await markers(join(rig.dir, 'marks'))).length, 1);
  });

  it('shows the Redis version, its eviction policy and the live workers with their backends in doctor --queue', async () => {
    const rig = await Rig.create();
    const worker = await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'listed');
    const doctor = await rig.run(['doctor', '--queue', redis.url]);
    assert.equal(doctor.code, 0, doctor.stderr);
    assert.match(doctor.stdout, /redis\s+\d+\.\d+/);
    assert.match(doctor.stdout, /maxmemory-policy\s+noeviction/);
    assert.match(doctor.stdout, new RegExp(`listed\\s+\\S+ pid ${worker.child.pid ?? 0}, 1 jobs, backend \\S+`));
    await stop(worker.child);
    const after = await rig.run(['doctor', '--queue', redis.url]);
    assert.doesNotMatch(after.stdout, /listed/, 'a stopped worker is still listed');
  });

  it('has a worker with --idle-exit leave by itself, with exit 0, once no task came for that long', async () => {
    const rig = await Rig.create();
    const child = rig.spawn(['worker', '--queue', redis.url, '--store', 'artifacts', '--jobs', '1', '--name', 'idler', '--idle-exit', '500ms']);
    started.push(child);
    child.stdout?.resume();
    const result = await collect(child);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /taking tasks[\s\S]*idle, stopping/);
  });

  it('fails a user error once, without retrying it, and says why', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: fails\nstages:\n  bad: { uses: ${join(STAGES, 'user-fail.mjs')}, with: { log: invocations.log } }\n`);
    await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'solo');
    const result = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']);
    assert.equal(result.code, 1, result.stderr);
    const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'bad');
    assert.ok(end?.event === 'stage-end' && end.failure?.reason === 'user-error');
    assert.match(JSON.stringify(end.failure), /the labels file is empty/);
    assert.equal((await rig.invocations()).length, 1);
  });

  it('has a worker refuse a task keyed for another backend instead of computing it differently', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: refused\nstages:\n  n: { uses: ${join(STAGES, 'numeric.mjs')} }\n`);
    await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'plain', { SEEDFLOW_BACKEND: 'cpu' });
    const result = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json'], { SEEDFLOW_BACKEND: 'wasm' });
    assert.equal(result.code, 1, result.stderr);
    const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'n');
    assert.ok(end?.event === 'stage-end' && end.failure?.reason === 'refused', JSON.stringify(end));
    assert.match(JSON.stringify(end.failure), /keyed for the wasm\S* backend, but this process computes on cpu/);
    assert.equal((await readdir(join(rig.dir, 'artifacts', 'objects')).catch(() => [])).length, 0);
  });

  it('exits 2 naming the URL when Redis cannot be reached at start, for run and for worker', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: none\nstages:\n  a: { uses: ${count}, with: { log: invocations.log } }\n`);
    const url = `redis://127.0.0.1:${await freePort()}`;
    const run = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', url]);
    assert.equal(run.code, 2, run.stderr);
    assert.ok(run.stderr.includes(`cannot reach the queue at ${url}`), run.stderr);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'a stack trace was printed');
    const worker = await rig.run(['worker', '--queue', url, '--store', 'artifacts']);
    assert.equal(worker.code, 2, worker.stderr);
    assert.ok(worker.stderr.includes(url));
    const bad = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', 'http://127.0.0.1:1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--queue http:\/\/127\.0\.0\.1:1: the scheme must be redis:\/\//);
    assert.deepEqual(await rig.invocations(), []);
  });

  it('stops with exit 4 when Redis is lost during a run, damages nothing, and resumes from the cache once Redis is back', async () => {
    const rig = await Rig.create();
    await mkdir(join(rig.dir, 'marks'));
    await rig.write('p.yaml', `name: lost\nstages:\n  first: { uses: ${count}, with: { log: invocations.log } }\n  slow: { uses: ${block}, needs: [first], with: { dir: marks } }\n`);
    const own = await startRedis(rig.dir);
    servers.push(own);
    const worker = await startWorker(rig, own.url, join(rig.dir, 'artifacts'), 'lonely');
    const run = collect(rig.spawn(['run', 'p.yaml', '--executor', 'bullmq', '--queue', own.url, '--json']));
    await until('the blocking stage to start', async () => (await markers(join(rig.dir, 'marks'))).length === 1);
    await own.stop();
    const result = await run;
    assert.equal(result.code, 4, result.stderr);
    assert.ok(result.stderr.includes(`lost the queue at ${own.url}`), result.stderr);
    assert.deepEqual(await verifyAll(join(rig.dir, 'artifacts'), result), []);
    await stop(worker.child);
    const back = await startRedis(rig.dir);
    servers.push(back);
    await writeFile(join(rig.dir, 'marks', 'release'), '');
    await startWorker(rig, back.url, join(rig.dir, 'artifacts'), 'again');
    const rerun = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', back.url, '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.deepEqual(executed(rerun), ['slow']);
    assert.equal((await rig.invocations()).length, 1, 'the stage done before Redis was lost ran again');
    assert.deepEqual(await verifyAll(join(rig.dir, 'artifacts'), rerun), []);
  });

  it('resumes after the submitter is killed, and the jobs it left in the queue do no harm', async () => {
    const rig = await Rig.create();
    await mkdir(join(rig.dir, 'marks'));
    await rig.write('p.yaml', `name: orphan\nstages:\n  slow: { uses: ${block}, with: { dir: marks } }\n  after: { uses: ${count}, needs: [slow], with: { log: invocations.log } }\n`);
    await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'steady');
    const submitter = rig.spawn(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']);
    started.push(submitter);
    submitter.stdout?.resume();
    submitter.stderr?.resume();
    await until('the blocking stage to start', async () => (await markers(join(rig.dir, 'marks'))).length === 1);
    const exited = once(submitter, 'exit');
    submitter.kill('SIGKILL');
    await exited;
    await writeFile(join(rig.dir, 'marks', 'release'), '');
    const rerun = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.ok(executed(rerun).includes('after'));
    assert.deepEqual(await verifyAll(join(rig.dir, 'artifacts'), rerun), []);
    assert.equal((await rig.invocations()).length, 1);
  });
});
