import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { cp, readdir, readFile, symlink, writeFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import AjvModule from 'ajv';
import { Queue } from 'bullmq';
import { after, before, describe, it } from 'node:test';
import { Store } from '../src/cache/store.js';
import { RunHistory } from '../src/history/history.js';
import { EVENTS_SCHEMA } from '../src/executor/events-schema.js';
import { queueName, shippedDir, storeId } from '../src/executor/queue-common.js';
import { CLI, collect, executed, Rig, STAGES, type CliResult } from './support/rig.js';
import { freePort, startRedis, until, type RedisServer } from './support/redis.js';
import { writeTinyIdx, tinyPipeline } from './support/tiny-data.js';

/** A `seedflow worker` this test started, and the output it printed so far. */
interface WorkerProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
}

const started: ChildProcess[] = [];
const servers: RedisServer[] = [];

/** Starts a worker on `store` (as this worker sees it) and waits until it takes tasks; `cli` is another build of seedflow to start. */
async function startWorker(rig: Rig, url: string, store: string, name: string, env: Record<string, string> = {}, cli?: string): Promise<WorkerProcess> {
  const args = ['worker', '--queue', url, '--store', store, '--jobs', '1', '--name', name];
  const child = cli === undefined ? rig.spawn(args, { SEEDFLOW_QUEUE_LOCK: '1s', ...env }) : spawn(process.execPath, [cli, ...args], { cwd: rig.dir, env: { ...process.env, SEEDFLOW_MODULE_PATH: STAGES, SEEDFLOW_QUEUE_LOCK: '1s', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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

/**
 * A copy of this seedflow build that calls itself another version, as a
 * machine with an older or newer install would: the compiled sources with a
 * package.json of its own, and the same dependencies.
 */
async function otherVersion(dir: string, version: string): Promise<string> {
  const built = resolve(dirname(CLI), '../..');
  const root = join(dir, `seedflow-${version}`);
  await cp(join(built, 'src'), join(root, 'dist', 'src'), { recursive: true });
  const own = JSON.parse(await readFile(resolve(built, '..', 'package.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(root, 'package.json'), JSON.stringify({ ...own, version }));
  await symlink(resolve(built, '..', 'node_modules'), join(root, 'node_modules'));
  return join(root, 'dist', 'src', 'cli', 'main.js');
}

/** The BullMQ queue of the store at `root`, opened by the test itself to look at its jobs. */
async function queueOf(url: string, root: string): Promise<Queue> {
  const { port } = new URL(url);
  const queue = new Queue(queueName(await storeId(root)), { connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null } });
  await queue.waitUntilReady();
  return queue;
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
    // The workers' progress reaches the submitter's event stream, as in a local run: one epoch per train instance.
    const trained = ends.filter((e) => e.stage.startsWith('train')).map((e) => e.id).sort();
    const progressed = [...new Set(queued.events.flatMap((e) => (e.event === 'progress' && e.progress.unit === 'epoch' ? [e.id] : [])))].sort();
    assert.ok(trained.length > 0);
    assert.deepEqual(progressed, trained, 'a train instance run on a worker reported no epoch');
    // Every line of the queued run's stream, with its worker names and `queue` starts, matches the published schema.
    const valid = new AjvModule.default({ strict: true, allErrors: true }).compile(EVENTS_SCHEMA);
    assert.deepEqual(queued.events.filter((e) => valid(e) !== true).map((e) => JSON.stringify(e)), []);
    assert.ok(queued.events.some((e) => e.event === 'stage-start' && e.where === 'queue'));
    const localProgress = local.events.filter((e) => e.event === 'progress' && e.progress.unit === 'epoch').length;
    assert.equal(queued.events.filter((e) => e.event === 'progress' && e.progress.unit === 'epoch').length, localProgress);
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
  it('takes its queued jobs back on Ctrl-C, exits 130, and lets the running one finish without starting the others', async () => {
    const rig = await Rig.create();
    // Three different keys (one marks folder each), so that three jobs exist.
    const dirs = ['a', 'b', 'c'];
    for (const d of dirs) await mkdir(join(rig.dir, d));
    await rig.write('p.yaml', `name: stopped\nstages:\n${dirs.map((d) => `  ${d}: { uses: ${block}, with: { dir: ${d} } }\n`).join('')}`);
    const started = async (): Promise<number> => (await Promise.all(dirs.map((d) => markers(join(rig.dir, d))))).flat().length;
    const worker = await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'single');
    const queue = await queueOf(redis.url, join(rig.dir, 'artifacts'));
    try {
      const submitter = rig.spawn(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--jobs', '3', '--json']);
      const run = collect(submitter);
      // One job runs on the one-job worker; the other two wait in the queue.
      await until('one stage to run and two to wait', async () => (await started()) === 1 && (await queue.getWaitingCount()) === 2);
      submitter.kill('SIGINT');
      const result = await run;
      assert.equal(result.code, 130, result.stderr);
      assert.equal(await queue.getWaitingCount(), 0, 'jobs were left queued after Ctrl-C');
      const ends = result.events.filter((e) => e.event === 'stage-end');
      assert.equal(ends.length, 3);
      assert.ok(ends.every((e) => e.event === 'stage-end' && e.status === 'interrupted'), JSON.stringify(ends));
      // The running stage finishes on its worker; the taken-back ones never start.
      for (const d of dirs) await writeFile(join(rig.dir, d, 'release'), '');
      await until('the running job to finish', async () => (await queue.getActiveCount()) === 0 && (await queue.getCompletedCount()) === 1);
      assert.equal(await started(), 1);
      assert.equal(await queue.getWaitingCount(), 0);
      const rerun = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']);
      assert.equal(rerun.code, 0, rerun.stderr);
      assert.equal(executed(rerun).length, 2, 'the stage finished on the worker after Ctrl-C was not cached');
    } finally {
      await queue.close();
      await stop(worker.child);
    }
  });

  it('has a worker of another seedflow version refuse the task, naming both versions, and compute nothing', async () => {
    const rig = await Rig.create();
    await rig.write('p.yaml', `name: versions\nstages:\n  a: { uses: ${count}, with: { log: invocations.log } }\n`);
    const older = await otherVersion(rig.dir, '0.0.1-older');
    const worker = await startWorker(rig, redis.url, join(rig.dir, 'artifacts'), 'older', {}, older);
    try {
      const result = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']);
      assert.equal(result.code, 1, result.stderr);
      const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'a');
      assert.ok(end?.event === 'stage-end' && end.failure?.reason === 'refused', JSON.stringify(end));
      const own = (JSON.parse(await readFile(resolve(dirname(CLI), '../../../package.json'), 'utf8')) as { version: string }).version;
      assert.match(JSON.stringify(end.failure), new RegExp(`planned by seedflow ${own.replace(/\./g, '\\.')}, this is 0\\.0\\.1-older`));
      assert.deepEqual(await rig.invocations(), []);
      assert.equal((await readdir(join(rig.dir, 'artifacts', 'objects')).catch(() => [])).length, 0);
    } finally {
      await stop(worker.child);
    }
  });

  it('has a worker refuse a stage module whose shared copy is not the code the run was planned with', async () => {
    const rig = await Rig.create();
    // The module the run plans with, and a different text at the place the shared store keeps that module's hash.
    const code = await readFile(count, 'utf8');
    await rig.write('stage.mjs', code);
    await rig.write('p.yaml', `name: modules\nstages:\n  a: { uses: ./stage.mjs, with: { log: invocations.log } }\n`);
    const sha256 = createHash('sha256').update(code).digest('hex');
    const store = join(rig.dir, 'artifacts');
    const worker = await startWorker(rig, redis.url, store, 'edited');
    try {
      await mkdir(shippedDir(store, sha256), { recursive: true });
      await writeFile(join(shippedDir(store, sha256), 'stage.mjs'), code.replace("'count'", "'edited'"));
      const result = await rig.run(['run', 'p.yaml', '--executor', 'bullmq', '--queue', redis.url, '--json']);
      assert.equal(result.code, 1, result.stderr);
      const end = result.events.find((e) => e.event === 'stage-end' && e.id === 'a');
      assert.ok(end?.event === 'stage-end' && end.failure?.reason === 'refused', JSON.stringify(end));
      assert.match(JSON.stringify(end.failure), /the stage module stage\.mjs changed since the run was planned/);
      assert.deepEqual(await rig.invocations(), []);
    } finally {
      await stop(worker.child);
    }
  });
});
