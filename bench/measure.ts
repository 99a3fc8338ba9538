/**
 * A measuring child process of the bench: runs one job (given as JSON in the
 * first argument) on seedflow's own code and prints its figures as one line.
 */
import { writeFile } from 'node:fs/promises';
import { knnGraph } from '../src/ml/knn.js';
import { fitPca, projectPca } from '../src/ml/pca.js';
import { encodeNpy, ndarray, readNpy } from '../src/util/npy.js';
import { loadTf, type Tf } from '../src/ml/backend.js';
import { kmeans } from '../src/ml/kmeans/kmeans.js';
import { trainMlp } from '../src/ml/mlp/index.js';
import { loadTrainingImages } from './data.js';
import {
  BENCH_MODEL, LEARNING_RATE, RESULT_PREFIX,
  type BenchFigures, type BenchJob, type CalibrateFigures, type CalibrateJob, type FeaturesFigures, type FeaturesJob, type KernelTime, type KMeansFigures, type KMeansJob, type MlpFigures, type MlpJob, type ProfileFigures, type ProfileJob,
} from './jobs.js';

function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Reads what a job needs, then returns the call to time, so that loading is never part of a measurement. */
async function prepare(tf: Tf, backend: string, job: KMeansJob | MlpJob): Promise<() => Promise<KMeansFigures | MlpFigures>> {
  const data = await loadTrainingImages(job.n);
  if (job.kind === 'kmeans') {
    const centres = await readNpy(job.centresFile);
    if (!(centres.data instanceof Float32Array) || centres.data.length !== job.k * data.d) throw new Error(`${job.centresFile} does not hold ${job.k} x ${data.d} float32 centres`);
    const init = centres.data;
    return async () => {
      const stamps: number[] = [];
      const began = performance.now();
      // tol 0 runs every iteration unless the labels stop changing, as scikit-learn does with tol=0.
      const result = await kmeans(tf, data.x, data.n, data.d, {
        k: job.k,
        init,
        maxIter: job.iterations,
        tol: 0,
        threads: job.threads,
        ...(job.algorithm === undefined ? {} : { algorithm: job.algorithm }),
        onIteration: () => stamps.push(performance.now()),
      });
      const totalS = (performance.now() - began) / 1000;
      // From the end of the first iteration to the end of the last: the bounded algorithms get cheaper as they go, so the mean, not the median.
      const first = stamps[0] ?? began;
      const last = stamps[stamps.length - 1] ?? began;
      const perIterationS = stamps.length > 1 ? (last - first) / (stamps.length - 1) / 1000 : totalS;
      return {
        kind: 'kmeans',
        iterations: result.iterations,
        perIterationS,
        totalS,
        inertia: result.inertia,
        scoredPasses: result.scoredRows / data.n,
        peakRssMb: peakRssMb(),
        backend,
      };
    };
  }
  return async () => {
    const { history } = await trainMlp(tf, BENCH_MODEL, { x: data.x, y: data.y, n: data.n }, undefined, {
      epochs: job.epochs,
      batchSize: job.batchSize,
      learningRate: LEARNING_RATE,
      optimizer: 'adam',
      seed: job.seed,
      shuffle: true,
      threads: job.threads ?? 1,
    });
    return { kind: 'mlp', epochSeconds: history.map((h) => h.seconds), losses: history.map((h) => h.loss), peakRssMb: peakRssMb(), backend };
  };
}

async function profile(tf: Tf, backend: string, job: ProfileJob): Promise<ProfileFigures> {
  if (job.of.kind === 'kmeans' && job.of.threads !== 1) throw new Error('only single-threaded k-means can be profiled: worker threads have their own engines');
  const run = await prepare(tf, backend, job.of);
  const began = performance.now();
  const info = await tf.profile(async () => {
    await run();
  });
  const wallMs = performance.now() - began;
  const totals = new Map<string, { kernel: string; shapes: string; calls: number; ms: number }>();
  for (const k of info.kernels) {
    // An op with its own gradient is listed around the kernel it runs: count the kernel only.
    if (k.name.endsWith('__op')) continue;
    const time = await k.kernelTimeMs;
    const ms = typeof time === 'number' ? time : 0;
    const shapes = k.inputShapes.filter((s) => s !== null && s !== undefined).map((s) => `[${s.join(',')}]`).join(' ');
    const key = `${k.name} ${shapes}`;
    const entry = totals.get(key) ?? { kernel: k.name, shapes, calls: 0, ms: 0 };
    entry.calls++;
    entry.ms += ms;
    totals.set(key, entry);
  }
  const kernels: KernelTime[] = [...totals.values()].sort((a, b) => b.ms - a.ms);
  return { kind: 'profile', wallMs, kernels };
}

function calibrate(tf: Tf, job: CalibrateJob): CalibrateFigures {
  const a = tf.randomUniform([job.m, job.k]);
  const b = tf.randomUniform([job.k, job.n]);
  // One product first, so the timing leaves out the backend's first-call set-up.
  tf.matMul(a, b).dispose();
  const began = performance.now();
  for (let i = 0; i < job.products; i++) {
    const c = tf.matMul(a, b);
    c.dataSync();
    c.dispose();
  }
  const secondsTaken = (performance.now() - began) / 1000;
  tf.dispose([a, b]);
  return { kind: 'calibrate', seconds: secondsTaken };
}

async function features(tf: Tf, backend: string, job: FeaturesJob): Promise<FeaturesFigures> {
  const data = await loadTrainingImages(job.n);
  let began = performance.now();
  const model = fitPca(tf, data.x, data.n, data.d, job.components);
  const fitS = (performance.now() - began) / 1000;
  began = performance.now();
  const projected = projectPca(tf, model, data.x, data.n, false);
  const projectS = (performance.now() - began) / 1000;
  began = performance.now();
  knnGraph(tf, projected, data.n, job.components, job.neighbours);
  const knnFeaturesS = (performance.now() - began) / 1000;
  began = performance.now();
  const pixels = knnGraph(tf, data.x, data.n, data.d, job.neighbours);
  const knnPixelsS = (performance.now() - began) / 1000;
  await writeFile(job.indicesFile, encodeNpy(ndarray('int32', [data.n, job.neighbours], pixels.indices)));
  const explained = model.variances.reduce((sum, v) => sum + v, 0) / model.totalVariance;
  return { kind: 'features', fitS, projectS, explained, knnFeaturesS, knnPixelsS, peakRssMb: peakRssMb(), backend };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as BenchJob;
  const { tf, backend } = await loadTf();
  const figures: BenchFigures =
    job.kind === 'profile' ? await profile(tf, backend, job)
    : job.kind === 'calibrate' ? calibrate(tf, job)
    : job.kind === 'features' ? await features(tf, backend, job)
    : await (await prepare(tf, backend, job))();
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(figures)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
});
