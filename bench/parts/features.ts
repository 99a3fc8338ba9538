/**
 * The features part: the `features` stage's PCA and the `knn-graph` stage's
 * exact kNN graph (on the PCA and on the pixels) against scikit-learn's PCA
 * and brute-force nearest neighbours, one thread each, with the explained
 * variance and the neighbour sets checked.
 */
import { join } from 'node:path';
import { say, type BenchContext, type PartResult } from '../context.js';
import type { FeaturesFigures } from '../jobs.js';
import { measureSeedflow } from '../processes.js';
import { runPeer } from '../python.js';
import { megabytes, seconds, type Row } from '../report.js';

/** What the scikit-learn peer measured. */
interface SklearnFeatures {
  readonly fitS: number;
  readonly projectS: number;
  readonly solver: string;
  readonly explained: number;
  readonly knnFeaturesS: number;
  readonly knnPixelsS: number;
  readonly sameNeighbourSets: number;
  readonly peakRssMb: number;
}

const COMPONENTS = 50;
const NEIGHBOURS = 20;
/** Rows whose 20 neighbours, as a set, must equal scikit-learn's (float32 near-ties may swap the last one). */
const SAME_SETS = 0.99;

export async function benchFeatures(ctx: BenchContext): Promise<PartResult> {
  const data = await ctx.images();
  const indicesFile = join(ctx.dir, 'knn-pixels.npy');
  say('  PCA and kNN graph: seedflow…');
  const ours = await measureSeedflow<FeaturesFigures>({ kind: 'features', n: data.n, components: COMPONENTS, neighbours: NEIGHBOURS, indicesFile });
  const missing = ctx.peerMissing('sklearn');
  let theirs: SklearnFeatures | null = null;
  if (missing === null) {
    say('  PCA and kNN graph: scikit-learn…');
    const files = await ctx.imageFiles();
    theirs = await runPeer<SklearnFeatures>(ctx.options.python, 'features_peer.py', [
      '--x', files.x, '--components', String(COMPONENTS), '--neighbours', String(NEIGHBOURS), '--ours', indicesFile,
    ]);
  }
  const line = (what: string, mine: number, peer: number | undefined): Row => ({
    what,
    ours: seconds(mine),
    against: peer === undefined ? (missing ?? '') : `${seconds(peer)} (scikit-learn)`,
    ratio: peer === undefined ? null : mine / peer,
    target: '',
    verdict: peer === undefined ? 'NO PEER' : 'info',
    memory: '',
  });
  const rows: Row[] = [
    line(`PCA fit, ${data.n} x 784 to ${COMPONENTS} components, 1 thread`, ours.fitS, theirs?.fitS),
    line(`PCA projection of the ${data.n} images, 1 thread`, ours.projectS, theirs?.projectS),
    line(`exact kNN graph, k = ${NEIGHBOURS}, on the ${COMPONENTS} components, 1 thread`, ours.knnFeaturesS, theirs?.knnFeaturesS),
    line(`exact kNN graph, k = ${NEIGHBOURS}, on the 784 pixels, 1 thread`, ours.knnPixelsS, theirs?.knnPixelsS),
  ];
  if (theirs !== null) {
    const ok = theirs.sameNeighbourSets >= SAME_SETS && Math.abs(ours.explained - theirs.explained) < 1e-4;
    if (!ok) {
      ctx.failed = true;
      process.stderr.write(`\nFAIL: features: ${(100 * theirs.sameNeighbourSets).toFixed(2)}% of rows have scikit-learn's neighbours; explained variance ${ours.explained} vs ${theirs.explained}\n\n`);
    }
    rows.push({
      what: 'check: same 20 neighbours as scikit-learn (rows), explained variance',
      ours: `${(100 * theirs.sameNeighbourSets).toFixed(2)}%, ${ours.explained.toFixed(5)}`,
      against: `${theirs.explained.toFixed(5)} (scikit-learn)`,
      ratio: null,
      target: `≥ ${100 * SAME_SETS}%, gap < 1e-4`,
      verdict: ok ? 'PASS' : 'FAIL',
      memory: `${megabytes(ours.peakRssMb)} / ${megabytes(theirs.peakRssMb)}`,
    });
  }
  const notes = [
    `The first ${data.n} training images /255, float32. seedflow (${ours.backend}): the covariance by matrix products in blocks of rows, ml-matrix's symmetric eigendecomposition (in JavaScript), ` +
      'then one product per block to project; the kNN graph scores blocks of 512 rows against all rows with one product each and takes the backend\'s top-k of 2k candidates, re-ranked exactly.',
    theirs === null ? '' : `scikit-learn: PCA with svd_solver=${theirs.solver}; NearestNeighbors(algorithm="brute").kneighbors, one thread (threadpoolctl).`,
  ].filter((n) => n !== '');
  return { section: 'features', rows, notes };
}
