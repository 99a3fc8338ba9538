/**
 * The queue part: the cost of running stages as BullMQ jobs on a redis-server
 * this bench starts on a free loopback port, against the local runner in the
 * same session: per task (a trivial stage), and for the quick pipeline on two
 * queue workers against `--jobs 2` locally.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { say, type BenchContext, type PartResult } from '../context.js';
import { runPipeline } from '../cli-runs.js';
import { seconds, times } from '../report.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Independent trivial stages in the overhead pipeline. */
const TASKS = 40;

const TRIVIAL = `import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
export const stage = {
  name: 'trivial', version: 1,
  schema: { type: 'object', additionalProperties: false, properties: { i: { type: 'integer' } } },
  async run(_inputs, params, ctx) { await writeFile(join(ctx.outDir, 'i.json'), JSON.stringify(params.i)); },
};
`;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  return typeof address === 'object' && address !== null ? address.port : 0;
}

async function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok); };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d: Buffer) => done(d.toString().startsWith('+PONG')));
  });
}

/** Starts a process and waits (at most 30 s) until `ready` says so. */
async function startUntil(command: string, args: readonly string[], ready: (output: string) => Promise<boolean> | boolean): Promise<ChildProcess> {
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) break;
    if (await ready(output)) return child;
    await delay(50);
  }
  child.kill('SIGKILL');
  throw new Error(`${command} did not start: ${output.slice(-500)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Per-task overhead through the queue, and the quick pipeline on two queue workers against --jobs 2. */
export async function benchQueue(ctx: BenchContext): Promise<PartResult> {
  const { options, dir } = ctx;
  const port = await freePort();
  const redis = await startUntil('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], () => answers(port));
  const url = `redis://127.0.0.1:${port}`;
  const workers: ChildProcess[] = [];
  const worker = async (store: string, name: string): Promise<void> => {
    workers.push(await startUntil(process.execPath, [CLI, 'worker', '--queue', url, '--store', store, '--jobs', '1', '--name', name], (o) => o.includes('taking tasks')));
  };
  try {
    await writeFile(join(dir, 'trivial.mjs'), TRIVIAL);
    const file = join(dir, 'trivial.yaml');
    await writeFile(file, `name: trivial\nmatrix: { i: [${Array.from({ length: TASKS }, (_, i) => i).join(', ')}] }\nstages:\n  t: { uses: ./trivial.mjs, with: { i: "\${{ matrix.i }}" } }\n`);
    say(`  ${TASKS} trivial stages, local and through the queue…`);
    const local = await runPipeline(file, join(dir, 'trivial-local'), 1, []);
    await worker(join(dir, 'trivial-queue'), 'trivial');
    const queued = await runPipeline(file, join(dir, 'trivial-queue'), 1, [], ['--executor', 'bullmq', '--queue', url]);
    await Promise.all(workers.splice(0).map(stop));
    const perLocal = (local.wallS - local.startupS) / TASKS;
    const perQueue = (queued.wallS - queued.startupS) / TASKS;

    say(`  ${options.pipeline} on two queue workers and with --jobs 2…`);
    const localQuick = await runPipeline(options.pipeline, join(dir, 'quick-local'), 2, options.sets);
    await worker(join(dir, 'quick-queue'), 'one');
    await worker(join(dir, 'quick-queue'), 'two');
    const queueQuick = await runPipeline(options.pipeline, join(dir, 'quick-queue'), 2, options.sets, ['--executor', 'bullmq', '--queue', url]);
    const ratio = queueQuick.wallS / localQuick.wallS;
    return {
      section: 'queue',
      rows: [
        { what: `per task, a trivial stage, through the queue (1 worker) against the local runner (--jobs 1)`, ours: seconds(perQueue), against: `${seconds(perLocal)} (local)`, ratio: perQueue / perLocal, target: '', verdict: 'info', memory: '' },
        { what: `${options.pipeline.split('/').slice(-2).join('/')} on two queue workers against --jobs 2 locally (wall)`, ours: seconds(queueQuick.wallS), against: `${seconds(localQuick.wallS)} (--jobs 2)`, ratio, target: '', verdict: 'info', memory: '' },
      ],
      notes: [
        `redis-server started by the bench, no persistence; workers are seedflow worker processes on the same machine, --jobs 1 each, the store a local folder. Per task: (wall − time to run-start) / ${TASKS}, one run each; the difference, ${seconds(perQueue - perLocal)} a task, is the cost of a job (submit, a worker's pick-up, events back); the worker was started, and loaded, before the run.`,
        `Pipeline: ${localQuick.ran} stages ran locally, ${queueQuick.ran} through the queue; ratio ${times(ratio)}. One machine: this measures the queue's overhead, not the gain of more machines.`,
      ],
    };
  } finally {
    await Promise.all(workers.map(stop));
    await stop(redis);
  }
}
