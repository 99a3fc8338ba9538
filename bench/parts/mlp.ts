/** The MLP part: one training epoch against PyTorch on the same number of threads. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initMlpWeights } from '../../src/ml/mlp/index.js';
import { encodeNpy, ndarray } from '../../src/util/npy.js';
import { BATCH, FIRST_LAYER, SEED, TARGETS, THREADS, say, threadWord, type BenchContext, type PartResult } from '../context.js';
import { BENCH_MODEL, LEARNING_RATE, type MlpFigures } from '../jobs.js';
import { measureSeedflow } from '../processes.js';
import { runPeer } from '../python.js';
import { judge, megabytes, seconds, type Row } from '../report.js';
import { productRow, profileNote } from '../speed.js';

/** What the PyTorch peer measured. */
interface TorchFigures {
  readonly epochSeconds: readonly number[];
  readonly losses: readonly number[];
  readonly threads: number;
  /** The native pools' sizes while training. */
  readonly pools: Readonly<Record<string, number>>;
  readonly peakRssMb: number;
}

/** Times training epochs against PyTorch, each on one thread and then on two. */
export async function benchMlp(ctx: BenchContext): Promise<PartResult> {
  const { options } = ctx;
  const data = await ctx.images();
  const missing = ctx.peerMissing('torch');
  const list = (xs: readonly number[], f: (x: number) => string): string => xs.map(f).join(', ');
  const ours = new Map<number, MlpFigures>();
  for (const threads of THREADS) {
    say(`  MLP: seedflow, ${threadWord(threads)}…`);
    ours.set(threads, await measureSeedflow<MlpFigures>({ kind: 'mlp', n: data.n, epochs: options.epochs, batchSize: BATCH, seed: SEED, threads }));
  }
  // The best epoch: on a shared machine the least disturbed one, and past the backend's warm-up.
  const bestEpoch = (threads: number): number => Math.min(...(ours.get(threads)?.epochSeconds ?? [NaN]));
  const peers: { threads: number; figures: TorchFigures | null }[] = [];
  if (missing === null) {
    const files = await ctx.imageFiles();
    const weightFiles: string[] = [];
    for (const [i, layer] of initMlpWeights(BENCH_MODEL, SEED).entries()) {
      const kernel = join(ctx.dir, `kernel-${i}.npy`);
      const bias = join(ctx.dir, `bias-${i}.npy`);
      await writeFile(kernel, encodeNpy(ndarray('float32', [layer.kernel.length / layer.bias.length, layer.bias.length], layer.kernel)));
      await writeFile(bias, encodeNpy(ndarray('float32', [layer.bias.length], layer.bias)));
      weightFiles.push(kernel, bias);
    }
    for (const threads of THREADS) {
      say(`  MLP: PyTorch, ${threadWord(threads)}…`);
      const figures = await runPeer<TorchFigures>(options.python, 'mlp_peer.py', [
        '--x', files.x, '--y', files.y, '--weights', ...weightFiles, '--epochs', String(options.epochs),
        '--batch-size', String(BATCH), '--learning-rate', String(LEARNING_RATE), '--threads', String(threads), '--seed', String(SEED),
      ]);
      peers.push({ threads, figures });
    }
  } else {
    peers.push({ threads: 1, figures: null });
  }
  const rows: Row[] = peers.map(({ threads, figures }) => {
    const mine = ours.get(threads);
    const ourEpoch = bestEpoch(threads);
    const theirs = figures === null ? null : Math.min(...figures.epochSeconds);
    const ratio = theirs === null ? null : ourEpoch / theirs;
    return {
      what: `MLP epoch (784-300-100-10, batch ${BATCH}, Adam), seedflow vs PyTorch, ${threadWord(threads)} each`,
      ours: seconds(ourEpoch),
      against: theirs === null ? (missing ?? '') : `${seconds(theirs)} (PyTorch)`,
      ratio,
      target: `≤ ${TARGETS.mlp}x`,
      verdict: judge(ratio, TARGETS.mlp),
      memory: `${megabytes(mine?.peakRssMb)} / ${megabytes(figures?.peakRssMb)}`,
    };
  });
  const torchOne = peers.find((p) => p.threads === 1)?.figures ?? null;
  const notes = [
    `${data.n} images, ${Math.ceil(data.n / BATCH)} batches per epoch, shuffled; both start from the same Glorot-uniform weights (seed ${SEED}); ` +
      `best of ${options.epochs} epochs each. seedflow runs on the ${ours.get(1)?.backend ?? '?'} backend; with more than one thread each batch is split ` +
      'between worker threads (data parallelism), each with its own backend.',
    ...[...ours].map(([threads, f]) => `seedflow (${threadWord(threads)}) epochs: ${list(f.epochSeconds, seconds)}; mean loss per epoch ${list(f.losses, (l) => l.toFixed(4))}.`),
    ...(torchOne === null ? [] : [`seedflow with 2 threads against PyTorch with 1: ${(bestEpoch(2) / Math.min(...torchOne.epochSeconds)).toFixed(2)}x.`]),
    ...peers.flatMap(({ threads, figures }) =>
      figures === null ? [] : [`PyTorch (${threadWord(figures.threads)}, native pools ${JSON.stringify(figures.pools)}) epochs: ${list(figures.epochSeconds, seconds)}; mean loss per epoch ${list(figures.losses, (l) => l.toFixed(4))}.`],
    ),
  ];
  say('  matrix-product speed…');
  rows.push(await productRow(ctx, FIRST_LAYER, "the MLP's first layer"));
  if (options.profile || rows.some((r) => r.verdict === 'MISS')) {
    notes.push(await profileNote('one seedflow MLP epoch', { kind: 'mlp', n: data.n, epochs: 1, batchSize: BATCH, seed: SEED }));
  }
  return { section: 'mlp', rows, notes };
}

