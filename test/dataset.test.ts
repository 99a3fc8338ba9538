import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readIdxImages, readIdxLabels } from '../src/ml/idx.js';
import { IDX_FILES, locateIdx, stage as dataset } from '../src/stages/dataset.js';
import type { DatasetMeta, DatasetParams, IdxSource } from '../src/stages/dataset.js';
import { stage as split } from '../src/stages/split.js';
import type { SplitParams } from '../src/stages/split.js';
import { StageUserError } from '../src/stages/types.js';
import type { ArtifactReader, ResolveOptions } from '../src/stages/types.js';
import { Random } from '../src/util/random.js';
import { runStage, tempDir } from './support/stage-harness.js';
import { idxImages, idxLabels } from './support/tiny-data.js';

const ROWS = 4;
const COLS = 3;
const quiet: ResolveOptions = { allowDownload: false, baseDir: process.cwd(), log: () => {} };


/** Random images and labels, reproducible from the seed. */
function makeData(count: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const random = new Random(seed);
  const images = Uint8Array.from({ length: count * ROWS * COLS }, () => random.int(256));
  const labels = Uint8Array.from({ length: count }, () => random.int(10));
  return { images, labels };
}

/** Writes the four IDX files of a small data set into `dir`, gzipped or plain; returns what it wrote. */
async function writeIdxSet(dir: string, options: { train?: number; test?: number; gzip?: boolean; seed?: number } = {}) {
  const train = makeData(options.train ?? 60, options.seed ?? 1);
  const test = makeData(options.test ?? 10, (options.seed ?? 1) + 100);
  const contents = [idxImages(train.images, train.labels.length, ROWS, COLS), idxLabels(train.labels), idxImages(test.images, test.labels.length, ROWS, COLS), idxLabels(test.labels)];
  await mkdir(dir, { recursive: true });
  const gzip = options.gzip ?? true;
  await Promise.all(IDX_FILES.map((name, i) => {
    const bytes = contents[i] ?? Buffer.alloc(0);
    return gzip ? writeFile(join(dir, `${name}.gz`), gzipSync(bytes)) : writeFile(join(dir, name), bytes);
  }));
  return { train, test };
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<StageUserError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof StageUserError, `expected a StageUserError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return error;
  }
  assert.fail(`expected an error matching ${pattern}`);
}

/** Sets environment variables for the test and puts the old values back afterwards. */
function withEnv(values: Record<string, string | undefined>): () => void {
  const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) {
      if (value === undefined) delete process.env[k];
      else process.env[k] = value;
    }
  };
  apply(values);
  return () => apply(saved);
}

describe('IDX files', () => {
  test('gzip and plain IDX files decode to the same images and labels', async () => {
    const root = await tempDir();
    const { train } = await writeIdxSet(join(root, 'gz'), { gzip: true });
    await writeIdxSet(join(root, 'plain'), { gzip: false });
    const fromGz = await readIdxImages(join(root, 'gz', 'train-images-idx3-ubyte.gz'));
    const fromPlain = await readIdxImages(join(root, 'plain', 'train-images-idx3-ubyte'));
    assert.deepEqual([fromGz.count, fromGz.rows, fromGz.cols], [60, ROWS, COLS]);
    assert.deepEqual(new Uint8Array(fromGz.data), train.images);
    assert.deepEqual(new Uint8Array(fromPlain.data), train.images);
    const labels = await readIdxLabels(join(root, 'gz', 'train-labels-idx1-ubyte.gz'), 10);
    assert.deepEqual(new Uint8Array(labels.data), train.labels);
  });

  test('a truncated image file fails with an error naming the file and the sizes expected and found', async () => {
    const root = await tempDir();
    const { images } = makeData(5, 3);
    const file = join(root, 'train-images-idx3-ubyte');
    await writeFile(file, idxImages(images, 5, ROWS, COLS).subarray(0, 40));
    const error = await rejectsWith(readIdxImages(file), /truncated/);
    assert.ok(error.message.includes(file));
    assert.match(error.message, /5 images of 4 x 3, which needs 76 bytes .*found 40/);
  });

  test('a truncated gzip file fails with an error naming the file', async () => {
    const root = await tempDir();
    const file = join(root, 'train-images-idx3-ubyte.gz');
    const gz = gzipSync(idxImages(makeData(5, 3).images, 5, ROWS, COLS));
    await writeFile(file, gz.subarray(0, gz.length - 12));
    const error = await rejectsWith(readIdxImages(file), /damaged gzip|truncated/);
    assert.ok(error.message.includes(file));
  });

  test('a label file given where images are expected is rejected for its magic number', async () => {
    const root = await tempDir();
    const file = join(root, 'images');
    await writeFile(file, idxLabels(Uint8Array.of(1, 2, 3)));
    const error = await rejectsWith(readIdxImages(file), /magic number 0x00000801 \(an IDX label file\), expected 0x00000803/);
    assert.ok(error.message.includes(file));
  });

  test('labels outside [0, classes) are rejected', async () => {
    const root = await tempDir();
    const file = join(root, 'labels.gz');
    await writeFile(file, gzipSync(idxLabels(Uint8Array.of(0, 9, 10, 3))));
    const error = await rejectsWith(readIdxLabels(file, 10), /label 10 of item 2 is outside \[0, 10\)/);
    assert.ok(error.message.includes(file));
  });
});

describe('the dataset stage', () => {
  test('it writes flat uint8 images, int32 labels and meta from an IDX folder', async () => {
    const root = await tempDir();
    const dir = join(root, 'data');
    const { train, test: testSet } = await writeIdxSet(dir);
    const params: DatasetParams = { name: 'fashion-mnist', path: dir };
    const files = await dataset.files?.(params, quiet);
    assert.deepEqual(files, IDX_FILES.map((f) => join(dir, `${f}.gz`)));
    const { artifact } = await runStage(dataset, params);
    assert.deepEqual(artifact.summary, { metrics: { train: 60, test: 10, classes: 10 }, timings: {} });
    const x = await artifact.readNpy('train_x.npy');
    assert.equal(x.dtype, 'uint8');
    assert.deepEqual(x.shape, [60, ROWS * COLS]);
    assert.deepEqual(x.data, train.images);
    const y = await artifact.readNpy('test_y.npy');
    assert.equal(y.dtype, 'int32');
    assert.deepEqual(Array.from(y.data), Array.from(testSet.labels));
    const meta = await artifact.readJson<DatasetMeta>('meta.json');
    assert.deepEqual(meta.shape, [ROWS, COLS]);
    assert.equal(meta.classNames[0], 'T-shirt/top');
    assert.equal(meta.classNames[9], 'Ankle boot');
    assert.equal(meta.files.length, 4);
    assert.match(meta.files[0]?.sha256 ?? '', /^[0-9a-f]{64}$/);
  });

  test('a truncated file makes the stage fail, naming the file, before it writes anything', async () => {
    const root = await tempDir();
    const dir = join(root, 'data');
    await writeIdxSet(dir, { gzip: false });
    const file = join(dir, 't10k-images-idx3-ubyte');
    await writeFile(file, idxImages(makeData(10, 5).images, 10, ROWS, COLS).subarray(0, 100));
    const store = join(root, 'store');
    const error = await rejectsWith(runStage(dataset, { name: 'mnist', path: dir }, {}, { root: store }), /truncated/);
    assert.ok(error.message.includes(file));
    const [tmp] = await readdir(join(store, 'tmp'));
    assert.deepEqual(await readdir(join(store, 'tmp', tmp ?? '')), []);
  });

  test('MNIST files are labelled with the digits', async () => {
    const root = await tempDir();
    await writeIdxSet(root, { train: 6, test: 2 });
    const { artifact } = await runStage(dataset, { name: 'mnist', path: root });
    const meta = await artifact.readJson<DatasetMeta>('meta.json');
    assert.deepEqual(meta.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  });
});

describe('CSV data sets', () => {
  test('a CSV pair with a header and a named label column loads with inferred classes and shape', async () => {
    const root = await tempDir();
    const header = 'pixel1,pixel2,label,pixel3,pixel4\n';
    await writeFile(join(root, 'train.csv'), `${header}1,2,0,3,4\n5,6,2,7,8\r\n\n`);
    await writeFile(join(root, 'test.csv.gz'), gzipSync(`${header}9,10,1,11,12\n`));
    const params: DatasetParams = { name: 'csv', train: join(root, 'train.csv'), test: join(root, 'test.csv.gz'), label_column: 'label' };
    const { artifact } = await runStage(dataset, params);
    assert.deepEqual(artifact.summary, { metrics: { train: 2, test: 1, classes: 3 }, timings: {} });
    const x = await artifact.readNpy('train_x.npy');
    assert.deepEqual(x.shape, [2, 4]);
    assert.deepEqual(Array.from(x.data), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(Array.from((await artifact.readNpy('train_y.npy')).data), [0, 2]);
    const meta = await artifact.readJson<DatasetMeta>('meta.json');
    assert.deepEqual(meta.shape, [2, 2]);
    assert.deepEqual(meta.classNames, ['0', '1', '2']);
  });

  test('a CSV without a header takes the label column by index and an explicit shape', async () => {
    const root = await tempDir();
    await writeFile(join(root, 'train.csv'), '3,1,2,3,4,5,6\n4,6,5,4,3,2,1\n');
    await writeFile(join(root, 'test.csv'), '0,0,0,0,0,0,0\n');
    const params: DatasetParams = { name: 'csv', train: join(root, 'train.csv'), test: join(root, 'test.csv'), label_column: 0, classes: 5, shape: [2, 3] };
    const { artifact } = await runStage(dataset, params);
    assert.deepEqual(artifact.summary, { metrics: { train: 2, test: 1, classes: 5 }, timings: {} });
    assert.deepEqual((await artifact.readJson<DatasetMeta>('meta.json')).shape, [2, 3]);
  });

  test('a CSV without the label column fails naming the file and line', async () => {
    const root = await tempDir();
    const train = join(root, 'train.csv');
    await writeFile(train, 'class,p1,p2,p3,p4\n1,2,3,4,5\n');
    await writeFile(join(root, 'test.csv'), 'class,p1,p2,p3,p4\n1,2,3,4,5\n');
    const error = await rejectsWith(runStage(dataset, { name: 'csv', train, test: join(root, 'test.csv'), label_column: 'label' }), /no column "label"/);
    assert.ok(error.message.startsWith(`${train}:1:`));
  });

  test('a CSV row of a different length fails naming the file and line', async () => {
    const root = await tempDir();
    const test = join(root, 'test.csv');
    await writeFile(join(root, 'train.csv'), 'label,a,b,c,d\n1,2,3,4,5\n');
    await writeFile(test, 'label,a,b,c,d\n1,2,3,4,5\n1,2,3,4\n');
    const error = await rejectsWith(runStage(dataset, { name: 'csv', train: join(root, 'train.csv'), test, label_column: 'label' }), /row has 4 fields, expected 5/);
    assert.ok(error.message.startsWith(`${test}:3:`));
  });
});

describe('finding the IDX files', () => {
  const restore: (() => void)[] = [];
  after(() => restore.reverse().forEach((r) => r()));

  test('with.path beats SEEDFLOW_DATA_DIR, which beats the user cache folder', async () => {
    const root = await tempDir();
    const given = join(root, 'given');
    const envDir = join(root, 'env');
    const xdg = join(root, 'xdg');
    const cached = join(xdg, 'seedflow', 'datasets', 'fashion-mnist');
    await Promise.all([writeIdxSet(given), writeIdxSet(join(envDir, 'fashion-mnist')), writeIdxSet(cached)]);
    const reset = withEnv({ SEEDFLOW_DATA_DIR: envDir, XDG_CACHE_HOME: xdg });
    try {
      const first = (files: readonly string[] | undefined) => (files?.[0] ?? '').replace(/\/train-images.*/, '');
      assert.equal(first(await dataset.files?.({ name: 'fashion-mnist', path: given }, quiet)), given);
      assert.equal(first(await dataset.files?.({ name: 'fashion-mnist' }, quiet)), join(envDir, 'fashion-mnist'));
      delete process.env['SEEDFLOW_DATA_DIR'];
      assert.equal(first(await dataset.files?.({ name: 'fashion-mnist' }, quiet)), cached);
    } finally {
      reset();
    }
  });

  test('SEEDFLOW_DATA_DIR may name the data set folder itself, and HOME gives the cache folder without XDG_CACHE_HOME', async () => {
    const root = await tempDir();
    const envDir = join(root, 'plain-folder');
    await writeIdxSet(envDir, { gzip: false });
    const home = join(root, 'home');
    await writeIdxSet(join(home, '.cache', 'seedflow', 'datasets', 'mnist'));
    const reset = withEnv({ SEEDFLOW_DATA_DIR: envDir, XDG_CACHE_HOME: undefined, HOME: home });
    try {
      assert.deepEqual(await dataset.files?.({ name: 'fashion-mnist' }, quiet), IDX_FILES.map((f) => join(envDir, f)));
      process.env['SEEDFLOW_DATA_DIR'] = join(root, 'elsewhere');
      const files = await dataset.files?.({ name: 'mnist' }, quiet);
      assert.equal(files?.[0], join(home, '.cache', 'seedflow', 'datasets', 'mnist', 'train-images-idx3-ubyte.gz'));
    } finally {
      reset();
    }
  });

  test('the system folder is searched after the user cache folder', async () => {
    const root = await tempDir();
    await writeIdxSet(join(root, 'system', 'fashion-mnist'));
    const reset = withEnv({ SEEDFLOW_DATA_DIR: undefined, XDG_CACHE_HOME: join(root, 'empty-cache') });
    try {
      const files = await locateIdx('fashion-mnist', undefined, { ...quiet, systemRoot: join(root, 'system') });
      assert.equal(files[0], join(root, 'system', 'fashion-mnist', 'train-images-idx3-ubyte.gz'));
    } finally {
      reset();
    }
  });

  test('with downloads off and nothing found, the error lists every place looked in and how to get the data', async () => {
    const root = await tempDir();
    const envDir = join(root, 'env');
    await mkdir(join(envDir, 'fashion-mnist'), { recursive: true });
    await writeFile(join(envDir, 'fashion-mnist', 'train-images-idx3-ubyte.gz'), '');
    const reset = withEnv({ SEEDFLOW_DATA_DIR: envDir, XDG_CACHE_HOME: join(root, 'cache') });
    try {
      const error = await rejectsWith(
        locateIdx('fashion-mnist', undefined, { ...quiet, systemRoot: join(root, 'system') }),
        /Fashion-MNIST was not found/,
      );
      for (const place of [join(envDir, 'fashion-mnist'), envDir, join(root, 'cache', 'seedflow', 'datasets', 'fashion-mnist'), join(root, 'system', 'fashion-mnist')]) {
        assert.ok(error.message.includes(`${place}:`), `${place} missing from:\n${error.message}`);
      }
      assert.match(error.message, /missing train-labels-idx1-ubyte\[\.gz\], t10k-images/);
      assert.match(error.message, /would try to download/);
      assert.match(error.hint ?? '', /SEEDFLOW_DATA_DIR.*apt-get install dataset-fashion-mnist.*fashion-mnist\.s3/s);
    } finally {
      reset();
    }
  });

  test('a download is verified, then renamed into the user cache folder', async () => {
    const root = await tempDir();
    const reset = withEnv({ SEEDFLOW_DATA_DIR: undefined, XDG_CACHE_HOME: join(root, 'cache') });
    try {
      const bodies = Object.fromEntries(IDX_FILES.map((f) => [f, Buffer.from(`content of ${f}`)]));
      const sha = (b: Buffer | undefined) => createHash('sha256').update(b ?? Buffer.alloc(0)).digest('hex');
      const hashes = Object.fromEntries(IDX_FILES.map((f) => [f, sha(bodies[f])])) as NonNullable<IdxSource['sha256']>;
      const fakeFetch = (async (url: string | URL | Request) => {
        const name = String(url).replace(/^.*\//, '').replace(/\.gz$/, '');
        return new Response(bodies[name] ?? null, { status: bodies[name] === undefined ? 404 : 200 });
      }) as typeof fetch;
      const options = { allowDownload: true, baseDir: process.cwd(), log: () => {}, systemRoot: join(root, 'system'), fetch: fakeFetch };
      const dir = join(root, 'cache', 'seedflow', 'datasets', 'fashion-mnist');

      const bad = { baseUrl: 'http://example.invalid/', sha256: { ...hashes, 't10k-images-idx3-ubyte': '0'.repeat(64) } };
      await rejectsWith(locateIdx('fashion-mnist', undefined, { ...options, source: bad }), /t10k-images-idx3-ubyte\.gz has SHA-256 [0-9a-f]{64}, expected 0{64}/);
      assert.deepEqual((await readdir(dir)).sort(), ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz']);

      const files = await locateIdx('fashion-mnist', undefined, { ...options, source: { baseUrl: 'http://example.invalid/', sha256: hashes } });
      assert.deepEqual(files, IDX_FILES.map((f) => join(dir, `${f}.gz`)));
      assert.equal((await readdir(dir)).length, 4);
    } finally {
      reset();
    }
  });

  test('a failed download fails at once with the reason and the places looked in', async () => {
    const root = await tempDir();
    const reset = withEnv({ SEEDFLOW_DATA_DIR: undefined, XDG_CACHE_HOME: join(root, 'cache') });
    try {
      const offline = (async () => {
        throw new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND example.invalid') });
      }) as typeof fetch;
      const error = await rejectsWith(
        locateIdx('mnist', undefined, { allowDownload: true, baseDir: process.cwd(), log: () => {}, systemRoot: join(root, 'system'), fetch: offline }),
        /MNIST was not found/,
      );
      assert.match(error.message, /could not download https:\/\/ossci-datasets\.s3\.amazonaws\.com\/mnist\/train-images-idx3-ubyte\.gz: fetch failed \(getaddrinfo ENOTFOUND/);
      assert.ok(error.message.includes(join(root, 'system', 'mnist')));
    } finally {
      reset();
    }
  });
});

describe('the split stage', () => {
  async function makeDataset(): Promise<ArtifactReader> {
    const dir = await tempDir();
    await writeIdxSet(dir, { train: 60, test: 10 });
    return (await runStage(dataset, { name: 'fashion-mnist', path: dir })).artifact;
  }
  const defaults: SplitParams = { validation: 5, shuffle: false, seed: 0 };

  test('by default training takes the first images, validation the last ones, and the test set is kept', async () => {
    const source = await makeDataset();
    const { artifact } = await runStage(split, defaults, { data: [source] });
    assert.deepEqual(artifact.summary, { metrics: { train: 55, validation: 5, test: 10 }, timings: {} });
    const all = await source.readNpy('train_x.npy');
    const width = ROWS * COLS;
    assert.deepEqual((await artifact.readNpy('x_train.npy')).data, all.data.slice(0, 55 * width));
    assert.deepEqual((await artifact.readNpy('x_val.npy')).data, all.data.slice(55 * width));
    assert.deepEqual((await artifact.readNpy('y_val.npy')).data, (await source.readNpy('train_y.npy')).data.slice(55));
    assert.deepEqual((await artifact.readNpy('x_test.npy')).data, (await source.readNpy('test_x.npy')).data);
    const meta = await artifact.readJson<{ counts: unknown; classes: number }>('meta.json');
    assert.deepEqual(meta.counts, { train: 55, validation: 5, test: 10 });
    assert.equal(meta.classes, 10);
  });

  test('a fractional validation takes that share of the training images, and train can be smaller', async () => {
    const source = await makeDataset();
    const { artifact } = await runStage(split, { ...defaults, validation: 0.25, train: 20 }, { data: [source] });
    assert.deepEqual(artifact.summary, { metrics: { train: 20, validation: 15, test: 10 }, timings: {} });
    assert.deepEqual((await artifact.readNpy('x_val.npy')).shape, [15, ROWS * COLS]);
  });

  test('a seeded shuffle gives the same split twice and another one for another seed', async () => {
    const source = await makeDataset();
    const labels = async (seed: number) => {
      const { artifact } = await runStage(split, { ...defaults, shuffle: true, seed }, { data: [source] });
      return [...(await artifact.readNpy('y_train.npy')).data, ...(await artifact.readNpy('y_val.npy')).data];
    };
    const [a, b, c] = [await labels(7), await labels(7), await labels(8)];
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const original = Array.from((await source.readNpy('train_y.npy')).data);
    assert.notDeepEqual(a, original);
    assert.deepEqual([...a].sort(), [...original].sort());
  });

  test('a validation set as large as the data is a user error', async () => {
    const source = await makeDataset();
    await rejectsWith(runStage(split, { ...defaults, validation: 60 }, { data: [source] }), /validation takes 60 images but the data set has only 60/);
    await rejectsWith(runStage(split, { ...defaults, train: 56 }, { data: [source] }), /together need 61 images/);
  });
});
