import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IDX_FILES } from '../../src/stages/dataset.js';
import { Random } from '../../src/util/random.js';

const SIDE = 28;

/** The bytes of an IDX image file: `count` images of `rows` x `cols` pixels. */
export function idxImages(images: Uint8Array, count: number, rows = SIDE, cols = SIDE): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x803, 0);
  head.writeUInt32BE(count, 4);
  head.writeUInt32BE(rows, 8);
  head.writeUInt32BE(cols, 12);
  return Buffer.concat([head, images]);
}

/** The bytes of an IDX label file. */
export function idxLabels(labels: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0x801, 0);
  head.writeUInt32BE(labels.length, 4);
  return Buffer.concat([head, labels]);
}

/**
 * `count` 28x28 images of `classes` easily separated classes: class c lights
 * a horizontal band of rows of its own, blurred by noise, so k-means finds
 * the classes and a tiny network learns them, not perfectly, in an epoch or two.
 */
function makeSet(count: number, classes: number, random: Random): { images: Uint8Array; labels: Uint8Array } {
  const images = new Uint8Array(count * SIDE * SIDE);
  const labels = new Uint8Array(count);
  const band = Math.floor(SIDE / classes);
  for (let i = 0; i < count; i++) {
    const label = i % classes;
    labels[i] = label;
    // Bands overlap their neighbours and the noise is strong, so a few labels or epochs are not enough for a perfect score.
    const from = label * band - 2;
    const to = (label + 1) * band + 2;
    for (let p = 0; p < SIDE * SIDE; p++) {
      const row = Math.floor(p / SIDE);
      const lit = row >= from && row < to && random.int(4) > 0;
      images[i * SIDE * SIDE + p] = lit ? 120 + random.int(136) : random.int(110);
    }
  }
  return { images, labels };
}

/** Writes the four plain IDX files of a tiny Fashion-MNIST-like data set into `dir`. */
export async function writeTinyIdx(dir: string, options: { train?: number; test?: number; classes?: number; seed?: number } = {}): Promise<void> {
  const random = new Random(options.seed ?? 7);
  const classes = options.classes ?? 5;
  const train = makeSet(options.train ?? 120, classes, random);
  const test = makeSet(options.test ?? 40, classes, random);
  const contents = [idxImages(train.images, train.labels.length), idxLabels(train.labels), idxImages(test.images, test.labels.length), idxLabels(test.labels)];
  await mkdir(dir, { recursive: true });
  await Promise.all(IDX_FILES.map((name, i) => writeFile(join(dir, name), contents[i] ?? Buffer.alloc(0))));
}

/**
 * A pipeline of the fashion-mnist experiment's shape on the tiny data in
 * `dataDir`: K in [2, 3], the full, part and centers strategies, the random
 * and all-labels baselines, an MLP 784-16-10 for `epochs` epochs, and an
 * aggregate of every evaluation. An `outputUnits` other than 10 makes every
 * training fail, for tests of failed runs. With `replicates`, every seed is
 * the replicate's.
 */
export function tinyPipeline(dataDir: string, options: { epochs?: number; name?: string; outputUnits?: number; replicates?: number } = {}): string {
  const text = `name: ${options.name ?? 'tiny'}
params:
  epochs: ${options.epochs ?? 2}
  learning_rate: 0.01
  seed: 3
matrix:
  k: [2, 3]
  seeding:
    - { strategy: full }
    - { strategy: part, percent: 50 }
    - { strategy: centers }
stages:
  data:
    uses: dataset
    with: { name: fashion-mnist, path: ${JSON.stringify(dataDir)} }
  split:
    uses: split
    needs: [data]
    with: { validation: 20 }
  cluster:
    uses: kmeans
    needs: [split]
    with: { k: "\${{ matrix.k }}", max_iter: 20, seed: "\${{ params.seed }}" }
  seed:
    uses: seed-labels
    needs: [split, cluster]
    with:
      strategy: "\${{ matrix.seeding.strategy }}"
      percent: "\${{ matrix.seeding.percent }}"
  train:
    uses: train
    needs: [split, seed]
    with: &training
      model:
        input_shape: [28, 28]
        layers:
          - { type: flatten }
          - { type: dense, units: 16, activation: relu }
          - { type: dense, units: ${options.outputUnits ?? 10}, activation: softmax }
      optimizer: { name: adam, learning_rate: "\${{ params.learning_rate }}" }
      epochs: "\${{ params.epochs }}"
      batch_size: 32
      seed: "\${{ params.seed }}"
  evaluate:
    uses: evaluate
    needs: [train, split]
  seed-all:
    uses: seed-labels
    needs: [split]
    with: { strategy: all }
  train-all:
    uses: train
    needs: [split, seed-all]
    with: *training
  evaluate-all:
    uses: evaluate
    needs: [train-all, split]
  seed-random:
    uses: seed-labels
    needs: [split]
    with: { strategy: random, n: 8, seed: "\${{ params.seed }}" }
  train-random:
    uses: train
    needs: [split, seed-random]
    with: *training
  evaluate-random:
    uses: evaluate
    needs: [train-random, split]
  results:
    uses: aggregate
    needs: [evaluate, evaluate-all, evaluate-random]
`;
  if (options.replicates === undefined) return text;
  // Every seed becomes the replicate's: k-means, the random draw, the network's weights and shuffles.
  return text.replace('matrix:\n', `replicates: ${options.replicates}\nmatrix:\n`).replaceAll('${{ params.seed }}', '${{ replicate.seed }}');
}
