/** The k-means part: time per Lloyd iteration against scikit-learn from the same centres, and the inertias checked. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadTf } from '../../src/ml/backend.js';
import { kmeansPlusPlus } from '../../src/ml/kmeans.js';
import { encodeNpy, ndarray } from '../../src/util/npy.js';
import { Random } from '../../src/util/random.js';
import { INERTIA_TOLERANCE, KS, SEED, TARGETS, THREADS, say, threadWord, type BenchContext, type PartResult } from '../context.js';
import type { KMeansFigures, KMeansJob } from '../jobs.js';
import { measureSeedflow } from '../processes.js';
import { runPeer } from '../python.js';
import { judge, megabytes, seconds, type Row } from '../report.js';
import { productRow, profileNote } from '../speed.js';

/** What the scikit-learn peer measured. */
interface SklearnFigures {
  readonly iterations: number;
  readonly perIterationS: number;
  readonly totalS: number;
  readonly inertia: number;
  readonly reportedInertia: number;
  readonly threads: Readonly<Record<string, number>>;
  readonly peakRssMb: number;
}

/** Times k-means at each K and thread count against scikit-learn and checks that the inertias agree. */
export async function benchKmeans(ctx: BenchContext): Promise<PartResult> {
  const { options } = ctx;
  const data = await ctx.images();
  const missing = ctx.peerMissing('sklearn');
  const files = missing === null ? await ctx.imageFiles() : null;
  const { tf } = await loadTf();
  const rows: Row[] = [];
  const checks: Row[] = [];
  const notes: string[] = [
    `${data.n} x ${data.d} images; ${options.iterations} Lloyd iterations from the same k-means++ centres (seedflow's, seed ${SEED}), tol 0; ` +
      'scikit-learn: KMeans(init=centres, n_init=1, algorithm="lloyd"), time per iteration = (fit of N iterations − fit of 1) / (N − 1), best of 2; ' +
      'seedflow: median interval between iteration callbacks (the first iteration excluded), best of 2 runs. Inertias are recomputed in double precision from each side\'s final centres and labels.',
  ];
  for (const k of KS) {
    const centres = kmeansPlusPlus(tf, data.x, data.n, data.d, k, new Random(SEED + k));
    const centresFile = join(ctx.dir, `centres-${k}.npy`);
    await writeFile(centresFile, encodeNpy(ndarray('float32', [k, data.d], centres)));
    for (const threads of THREADS) {
      say(`  k-means K=${k}, ${threadWord(threads)}: seedflow…`);
      // Best of two runs, as for scikit-learn: on a shared machine the less disturbed one.
      const job: KMeansJob = { kind: 'kmeans', n: data.n, k, centresFile, iterations: options.iterations, threads };
      const tries = [await measureSeedflow<KMeansFigures>(job), await measureSeedflow<KMeansFigures>(job)];
      const ours = tries.reduce((a, b) => (b.perIterationS < a.perIterationS ? b : a));
      let theirs: SklearnFigures | null = null;
      if (files !== null) {
        say(`  k-means K=${k}, ${threadWord(threads)}: scikit-learn…`);
        theirs = await runPeer<SklearnFigures>(options.python, 'kmeans_peer.py', [
          '--x', files.x, '--centres', centresFile, '--iterations', String(options.iterations), '--threads', String(threads),
        ]);
      }
      const ratio = theirs === null ? null : ours.perIterationS / theirs.perIterationS;
      rows.push({
        what: `k-means K=${k}, per Lloyd iteration, ${threadWord(threads)}`,
        ours: seconds(ours.perIterationS),
        against: theirs === null ? (missing ?? '') : `${seconds(theirs.perIterationS)} (scikit-learn)`,
        ratio,
        target: `≤ ${TARGETS.kmeans}x`,
        verdict: judge(ratio, TARGETS.kmeans),
        memory: `${megabytes(ours.peakRssMb)} / ${megabytes(theirs?.peakRssMb)}`,
      });
      notes.push(
        `K=${k}, ${threadWord(threads)}: seedflow ${ours.iterations} iterations, whole call ${seconds(ours.totalS)}` +
          (theirs === null ? '' : `; scikit-learn ${theirs.iterations} iterations, whole fit ${seconds(theirs.totalS)}, its thread pools ${JSON.stringify(theirs.threads)}`),
      );
      if (theirs !== null) {
        const gap = Math.abs(ours.inertia - theirs.inertia) / Math.max(Math.abs(theirs.inertia), 1e-12);
        const ok = gap <= INERTIA_TOLERANCE;
        if (!ok) {
          ctx.failed = true;
          process.stderr.write(`\nFAIL: k-means K=${k}, ${threadWord(threads)}: inertias disagree: seedflow ${ours.inertia} vs scikit-learn ${theirs.inertia} (relative gap ${gap.toExponential(2)} > ${INERTIA_TOLERANCE})\n\n`);
        }
        checks.push({
          what: `k-means K=${k} final inertia, ${threadWord(threads)}`,
          ours: `${ours.inertia.toPrecision(7)} (${ours.iterations} it.)`,
          against: `${theirs.inertia.toPrecision(7)} (${theirs.iterations} it.), gap ${gap.toExponential(1)}`,
          ratio: null,
          target: `gap ≤ ${INERTIA_TOLERANCE}`,
          verdict: ok ? 'PASS' : 'FAIL',
          memory: '',
        });
      }
    }
  }
  say('  matrix-product speed…');
  rows.push(await productRow(ctx, { m: 4096, k: data.d, n: KS[KS.length - 1] ?? 100 }, 'the k-means distance kernel'));
  if (options.profile || rows.some((r) => r.verdict === 'MISS')) {
    const k = KS[KS.length - 1] ?? 100;
    const iterations = Math.min(options.iterations, 10);
    const job: KMeansJob = { kind: 'kmeans', n: data.n, k, centresFile: join(ctx.dir, `centres-${k}.npy`), iterations, threads: 1 };
    notes.push(await profileNote(`seedflow's k-means, K=${k}, ${iterations} iterations, 1 thread`, job));
  }
  return { section: 'kmeans', rows: [...rows, ...checks], notes };
}

