import { writeFile } from 'node:fs/promises';
import { unitPixels } from '../src/cache/pixels.js';
import { readIdxImages, readIdxLabels } from '../src/ml/idx.js';
import { datasetFiles } from '../src/stages/dataset.js';
import { encodeNpy, ndarray } from '../src/util/npy.js';

/** Pixels per Fashion-MNIST image. */
export const PIXELS = 784;
/** The training images the experiment trains on (the rest validate). */
export const FULL_ROWS = 55_000;

/** The first `n` Fashion-MNIST training images scaled to [0, 1], with their labels. */
export interface BenchData {
  /** `n` x 784 values, row-major. */
  readonly x: Float32Array;
  readonly y: Int32Array;
  readonly n: number;
  readonly d: number;
  /** The image file they were read from. */
  readonly source: string;
}

/**
 * Reads the first `n` training images the way a pipeline's `dataset` stage
 * finds them (SEEDFLOW_DATA_DIR, the user cache, the system folder), without
 * downloading, and scales them by 1/255 as the train and kmeans stages do.
 */
export async function loadTrainingImages(n: number): Promise<BenchData> {
  const files = await datasetFiles({ name: 'fashion-mnist' }, { allowDownload: false, log: () => {}, baseDir: process.cwd() });
  const [imageFile, labelFile] = files;
  if (imageFile === undefined || labelFile === undefined) throw new Error('the data set has no training files');
  const [images, labels] = await Promise.all([readIdxImages(imageFile), readIdxLabels(labelFile, 10)]);
  const d = images.rows * images.cols;
  if (d !== PIXELS) throw new Error(`expected ${PIXELS} pixels per image, found ${d}`);
  if (n > images.count) throw new Error(`asked for ${n} images, the file holds ${images.count}`);
  const x = unitPixels(images.data.subarray(0, n * d));
  return { x, y: Int32Array.from(labels.data.subarray(0, n)), n, d, source: imageFile };
}

/** Writes the images and labels as `.npy` files for the Python peers. */
export async function writeBenchData(data: BenchData, xFile: string, yFile: string): Promise<void> {
  await writeFile(xFile, encodeNpy(ndarray('float32', [data.n, data.d], data.x)));
  await writeFile(yFile, encodeNpy(ndarray('int32', [data.n], data.y)));
}
