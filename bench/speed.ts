/**
 * The speed floors under the comparisons: one thread's matrix products on
 * seedflow's backend against NumPy's BLAS, how much a second process really
 * adds on this machine, and a kernel-by-kernel profile of a measurement.
 */
import type { CalibrateFigures, CalibrateJob, KMeansJob, MlpFigures, MlpJob, ProfileFigures } from './jobs.js';
import { measureSeedflow } from './processes.js';
import { runPeer } from './python.js';
import { seconds, type Row } from './report.js';
import { FIRST_LAYER, say, type BenchContext } from './context.js';

/** What the NumPy peer measured. */
interface GemmFigures {
  readonly seconds: number;
  readonly threads: Readonly<Record<string, number>>;
}

/**
 * One thread's matrix-product speed, seedflow's backend against NumPy's BLAS,
 * on the shape that dominates a measurement: the floor under its ratio.
 */
export async function productRow(ctx: BenchContext, shape: { readonly m: number; readonly k: number; readonly n: number }, role: string): Promise<Row> {
  const products = 20;
  const flops = 2 * shape.m * shape.k * shape.n * products;
  const ours = await measureSeedflow<CalibrateFigures>({ kind: 'calibrate', ...shape, products });
  const missing = ctx.peerMissing('sklearn');
  const theirs = missing === null
    ? await runPeer<GemmFigures>(ctx.options.python, 'gemm_peer.py', ['--m', String(shape.m), '--k', String(shape.k), '--n', String(shape.n), '--products', String(products), '--threads', '1'])
    : null;
  const rate = (s: number): string => `${(flops / s / 1e9).toFixed(0)} GFLOP/s`;
  const ratio = theirs === null ? null : ours.seconds / theirs.seconds;
  return {
    what: `matrix product [${shape.m},${shape.k}]·[${shape.k},${shape.n}], 1 thread (${role})`,
    ours: `${seconds(ours.seconds / products)} (${rate(ours.seconds)})`,
    against: theirs === null ? (missing ?? '') : `${seconds(theirs.seconds / products)} (NumPy, ${rate(theirs.seconds)})`,
    ratio,
    target: '',
    verdict: 'info',
    memory: '',
  };
}

/**
 * How much faster two processes get through twice the work than one gets
 * through it alone: 2 on two free cores, less when the cores are shared
 * (hyper-threads, other jobs) or memory bandwidth runs out.
 */
export async function parallelCapacity(products: number, minSeconds = 3): Promise<{ alone: number; together: number; capacity: number }> {
  let job: CalibrateJob = { kind: 'calibrate', ...FIRST_LAYER, products };
  let alone = (await measureSeedflow<CalibrateFigures>(job)).seconds;
  // The loop must outlast a process's start-up by far, or the pair's start-ups overlap the other's products.
  if (alone < minSeconds) {
    job = { ...job, products: Math.ceil((products * minSeconds) / Math.max(alone, 1e-3)) };
    alone = (await measureSeedflow<CalibrateFigures>(job)).seconds;
  }
  const pair = await Promise.all([measureSeedflow<CalibrateFigures>(job), measureSeedflow<CalibrateFigures>(job)]);
  const together = Math.max(...pair.map((f) => f.seconds));
  return { alone, together, capacity: (2 * alone) / together };
}

/**
 * The same for the work that dominates a grid, training: the best epoch of the report's MLP in one
 * process alone against the slower of two processes training at once (same data, one thread each).
 */
export async function trainingCapacity(n: number, epochs: number): Promise<{ alone: number; together: number; capacity: number }> {
  const job: MlpJob = { kind: 'mlp', n, epochs, batchSize: FIRST_LAYER.m, seed: 1, threads: 1 };
  const best = (f: MlpFigures): number => Math.min(...f.epochSeconds);
  const alone = best(await measureSeedflow<MlpFigures>(job));
  const pair = await Promise.all([measureSeedflow<MlpFigures>(job), measureSeedflow<MlpFigures>(job)]);
  const together = Math.max(...pair.map(best));
  return { alone, together, capacity: (2 * alone) / together };
}

/**
 * Where seedflow's time goes in one single-threaded measurement: the
 * slowest TensorFlow.js kernels and what is left outside them.
 */
export async function profileNote(what: string, job: KMeansJob | MlpJob): Promise<string> {
  say(`  profiling ${what}…`);
  const figures = await measureSeedflow<ProfileFigures>({ kind: 'profile', of: job });
  const share = (ms: number): string => `${((100 * ms) / figures.wallMs).toFixed(0)}%`;
  const inKernels = figures.kernels.reduce((a, k) => a + k.ms, 0);
  const top = figures.kernels.slice(0, 6).map((k) => `${k.kernel} ${k.shapes} ×${k.calls} ${seconds(k.ms / 1000)} (${share(k.ms)})`);
  const outside = figures.wallMs - inKernels;
  return `Profile of ${what} (TensorFlow.js profiler, ${seconds(figures.wallMs / 1000)} wall): ${top.join('; ')}; ` +
    `all kernels ${share(inKernels)}; outside the kernels (JavaScript, copies into and out of the backend) ${seconds(Math.max(0, outside) / 1000)} (${share(Math.max(0, outside))}).`;
}

