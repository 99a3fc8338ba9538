import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RESULT_PREFIX, type BenchFigures, type BenchJob } from './jobs.js';

/** How a child process ended, with everything it printed and how long it took. */
export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From spawn to exit, in seconds. */
  readonly wallS: number;
  /** When the process was spawned, in milliseconds since the epoch (the clock of event times). */
  readonly startedAt: number;
}

/** Runs a command to its end, collecting its output; never rejects for a non-zero exit. */
export function runProcess(command: string, args: readonly string[], options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const began = performance.now();
    const startedAt = Date.now();
    const child = spawn(command, [...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), wallS: (performance.now() - began) / 1000, startedAt });
    });
  });
}

/** The last lines of a child's error output, for a failure message. */
export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Throws with the child's own words when it did not exit cleanly. */
export function checkFinished(what: string, finished: Finished): void {
  if (finished.code === 0) return;
  const how = finished.signal !== null ? `was killed by ${finished.signal}` : `exited with code ${finished.code}`;
  throw new Error(`${what} ${how}:\n${tail(finished.stderr || finished.stdout)}`);
}

const MEASURE = fileURLToPath(new URL('./measure.js', import.meta.url));

/** Runs one seedflow measurement in a fresh Node process and returns its figures. */
export async function measureSeedflow<F extends BenchFigures>(job: BenchJob): Promise<F> {
  const finished = await runProcess(process.execPath, [MEASURE, JSON.stringify(job)]);
  checkFinished(`the ${job.kind} measurement`, finished);
  const line = finished.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (line === undefined) throw new Error(`the ${job.kind} measurement printed no result:\n${tail(finished.stdout)}`);
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as F;
}
