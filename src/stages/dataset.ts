import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { readIdxImages, readIdxLabels } from '../ml/idx.js';
import { ndarray } from '../util/npy.js';
import { describeFsError, kindOf } from '../util/files.js';
import { readCsv } from './csv.js';
import { StageUserError } from './types.js';
import type { ResolveOptions, StageType } from './types.js';

/** The data sets the `dataset` stage can load. */
export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'csv'] as const;
/** A data set's name, as written in `with.name`. */
export type DatasetName = (typeof DATASET_NAMES)[number];
/** The data sets distributed as four IDX files. */
export type IdxDatasetName = Exclude<DatasetName, 'csv'>;

/** The `with` block of a `dataset` stage. */
export interface DatasetParams {
  /** Which data set to load; `csv` reads the files named by `train` and `test`. */
  readonly name: DatasetName;
  /** A folder holding the four IDX files (plain or gzip-compressed); IDX data sets only. */
  readonly path?: string;
  /** The CSV file of training rows (csv only). */
  readonly train?: string;
  /** The CSV file of test rows (csv only). */
  readonly test?: string;
  /** The CSV column holding the label: a header name or a 0-based index (csv only). */
  readonly label_column?: string | number;
  /** The number of classes; inferred from the largest label when absent (csv only). */
  readonly classes?: number;
  /** Image height and width; the square root of the pixel count when absent (csv only). */
  readonly shape?: readonly number[];
}

/** The contents of a `dataset` artifact's `meta.json`. */
export interface DatasetMeta {
  readonly name: DatasetName;
  /** Image height and width. */
  readonly shape: readonly [number, number];
  readonly classes: number;
  /** A display name for each class, in label order. */
  readonly classNames: readonly string[];
  /** The files read, with the SHA-256 of their bytes as stored. */
  readonly files: readonly { readonly path: string; readonly sha256: string }[];
}

/** The four files of an IDX data set, in the order `files` returns them. */
export const IDX_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] as const;

/** Where an IDX data set is downloaded from, and the SHA-256 of each gzip-compressed file. */
export interface IdxSource {
  /** Prefix of each file's URL, ending in `/`. */
  readonly baseUrl: string;
  /** Hash of `<file>.gz` for each of IDX_FILES; null when unknown, which forbids downloading. */
  readonly sha256: Readonly<Record<(typeof IDX_FILES)[number], string>> | null;
}

/** The official sources of the IDX data sets. */
export const IDX_SOURCES: Readonly<Record<IdxDatasetName, IdxSource>> = {
  'fashion-mnist': {
    baseUrl: 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    sha256: {
      'train-images-idx3-ubyte': 'b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7',
      'train-labels-idx1-ubyte': '0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056',
      't10k-images-idx3-ubyte': 'cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa',
      't10k-labels-idx1-ubyte': '8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05',
    },
  },
  mnist: {
    baseUrl: 'https://ossci-datasets.s3.amazonaws.com/mnist/',
    sha256: {
      'train-images-idx3-ubyte': '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
      'train-labels-idx1-ubyte': '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
      't10k-images-idx3-ubyte': '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
      't10k-labels-idx1-ubyte': 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
    },
  },
};

const TITLES: Readonly<Record<DatasetName, string>> = { 'fashion-mnist': 'Fashion-MNIST', mnist: 'MNIST', csv: 'CSV data' };

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

/** The folder Debian's `dataset-*` packages install data sets under. */
export const SYSTEM_DATASETS_ROOT = '/usr/share/datasets';

const CONNECT_TIMEOUT_MS = 15_000;
const IDLE_TIMEOUT_MS = 60_000;

/** The folder seedflow keeps a data set in for this user: `$XDG_CACHE_HOME/seedflow/datasets/<name>` or `~/.cache/...`. */
export function userCacheDir(name: string): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  // The XDG spec says a relative value must be ignored.
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(base, 'seedflow', 'datasets', name);
}

/** Options of `locateIdx` beyond those the engine gives; tests use them to stay off the machine's folders and the network. */
export interface LocateOptions extends ResolveOptions {
  /** The folder holding Debian's data set folders; SYSTEM_DATASETS_ROOT by default. */
  readonly systemRoot?: string;
  /** Where to download from; IDX_SOURCES[name] by default. */
  readonly source?: IdxSource;
  /** The fetch implementation; the global one by default. */
  readonly fetch?: typeof fetch;
}

async function isFile(file: string): Promise<boolean> {
  return (await notRegular(file)) === null;
}

/** Why `file` cannot be read as data (`not found`, `a FIFO, not a regular file`...), or null when it is a regular file. */
async function notRegular(file: string): Promise<string | null> {
  try {
    const info = await stat(file);
    return info.isFile() ? null : `${kindOf(info)}, not a regular file`;
  } catch (error) {
    return describeFsError(error);
  }
}

async function isDir(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/** The four files in `dir` (each `.gz` or plain, `.gz` preferred), or why the folder does not hold them. */
async function idxFilesIn(dir: string): Promise<{ readonly files: string[] } | { readonly problem: string }> {
  if (!(await isDir(dir))) return { problem: 'no such folder' };
  const files: string[] = [];
  const missing: string[] = [];
  for (const name of IDX_FILES) {
    const gz = join(dir, `${name}.gz`);
    const plain = join(dir, name);
    const [gzProblem, plainProblem] = [await notRegular(gz), await notRegular(plain)];
    if (gzProblem === null) files.push(gz);
    else if (plainProblem === null) files.push(plain);
    // A file that is there but is no regular file (a FIFO, a device) is named as such: never read.
    else if (gzProblem !== 'not found') missing.push(`${name}.gz (${gzProblem})`);
    else if (plainProblem !== 'not found') missing.push(`${name} (${plainProblem})`);
    else missing.push(`${name}[.gz]`);
  }
  return missing.length === 0 ? { files } : { problem: `missing ${missing.join(', ')}` };
}

function hintFor(name: IdxDatasetName, cacheDir: string, source: IdxSource): string {
  const ways = ['set `with.path` or the SEEDFLOW_DATA_DIR environment variable to a folder holding the four files'];
  if (name === 'fashion-mnist') ways.push('install Debian\'s package (`apt-get install dataset-fashion-mnist`)');
  ways.push(`download ${IDX_FILES.map((f) => `${f}.gz`).join(', ')} from ${source.baseUrl} into ${cacheDir}`);
  return `To get the data: ${ways.join('; or ')}.`;
}

/**
 * Finds the four IDX files of a data set, in this order: `path` when given
 * (and then only there), the folder SEEDFLOW_DATA_DIR names or its `<name>`
 * subfolder, the user's cache folder, Debian's folder, and finally a verified
 * download into the user's cache folder when `allowDownload` is true. Returns
 * their absolute paths in IDX_FILES order; throws StageUserError listing every
 * place looked in when the data cannot be had.
 */
export async function locateIdx(name: IdxDatasetName, path: string | undefined, options: LocateOptions): Promise<string[]> {
  const source = options.source ?? IDX_SOURCES[name];
  const cacheDir = userCacheDir(name);
  const looked: string[] = [];
  const title = TITLES[name];
  const fail = (extra: string): never => {
    throw new StageUserError(
      [`${title} was not found. Looked in:`, ...looked.map((l) => `  - ${l}`), ...(extra === '' ? [] : [extra])].join('\n'),
      hintFor(name, cacheDir, source),
    );
  };

  // A folder the user names is taken at its word: falling back elsewhere would hide a typo.
  if (path !== undefined) {
    const dir = resolve(options.baseDir, path);
    const found = await idxFilesIn(dir);
    if ('files' in found) return found.files;
    looked.push(`with.path ${dir}: ${found.problem}`);
    fail('The folder given as with.path must hold the four files.');
  }

  const envDir = process.env['SEEDFLOW_DATA_DIR'];
  if (envDir !== undefined && envDir !== '') {
    // The named subfolder first, so that a folder of several data sets never yields the wrong one.
    for (const dir of [join(resolve(envDir), name), resolve(envDir)]) {
      const found = await idxFilesIn(dir);
      if ('files' in found) return found.files;
      looked.push(`SEEDFLOW_DATA_DIR ${dir}: ${found.problem}`);
    }
  } else {
    looked.push('SEEDFLOW_DATA_DIR: not set');
  }

  const places: [string, string][] = [
    ['user cache folder', cacheDir],
    ['system folder', join(options.systemRoot ?? SYSTEM_DATASETS_ROOT, name)],
  ];
  for (const [label, dir] of places) {
    const found = await idxFilesIn(dir);
    if ('files' in found) return found.files;
    looked.push(`${label} ${dir}: ${found.problem}`);
  }

  if (!options.allowDownload) {
    looked.push(`download from ${source.baseUrl}: not tried by this command`);
    return fail(`\`seedflow run\` would try to download it into ${cacheDir}.`);
  }
  if (source.sha256 === null) {
    looked.push(`download from ${source.baseUrl}: refused, no checksums are known to verify the files`);
    return fail('');
  }
  try {
    return await downloadIdx(cacheDir, source.baseUrl, source.sha256, options);
  } catch (error) {
    if (!(error instanceof DownloadError)) throw error;
    looked.push(`download from ${source.baseUrl}: ${error.message}`);
    return fail('');
  }
}

class DownloadError extends Error {}

async function downloadIdx(
  dir: string,
  baseUrl: string,
  hashes: NonNullable<IdxSource['sha256']>,
  options: LocateOptions,
): Promise<string[]> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new DownloadError(`cannot create ${dir}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const files: string[] = [];
  for (const name of IDX_FILES) {
    const file = join(dir, `${name}.gz`);
    // A file already in the cache folder was verified when it was downloaded.
    if (!(await isFile(file))) {
      options.log('info', `downloading ${baseUrl}${name}.gz into ${dir}`);
      await downloadFile(`${baseUrl}${name}.gz`, file, hashes[name], options.fetch ?? fetch);
    }
    files.push(file);
  }
  return files;
}

/** Streams a URL into `file`, checking its SHA-256 before renaming a temporary file into place. */
async function downloadFile(url: string, file: string, sha256: string, fetchImpl: typeof fetch): Promise<void> {
  const controller = new AbortController();
  // The timer guards the connection first, then each pause between chunks: a slow but live download may take long.
  let timer = setTimeout(() => controller.abort(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
  const temp = `${file}.${randomBytes(6).toString('hex')}.part`;
  try {
    const response = await fetchImpl(url, { signal: controller.signal });
    if (!response.ok || response.body === null) throw new DownloadError(`${url} answered HTTP ${response.status}`);
    const body: AsyncIterable<Uint8Array> = response.body;
    const hash = createHash('sha256');
    const out = createWriteStream(temp);
    try {
      for await (const chunk of body) {
        clearTimeout(timer);
        timer = setTimeout(() => controller.abort(new Error(`stalled for ${IDLE_TIMEOUT_MS / 1000} s`)), IDLE_TIMEOUT_MS);
        hash.update(chunk);
        if (!out.write(chunk)) await new Promise<void>((done) => out.once('drain', () => done()));
      }
    } finally {
      out.end();
      await finished(out);
    }
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new DownloadError(`${url} has SHA-256 ${actual}, expected ${sha256}; the file was not kept`);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    if (error instanceof DownloadError) throw error;
    throw new DownloadError(`could not download ${url}: ${describe(error)}`);
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // fetch hides the reason (DNS failure, refused connection, timeout) in `cause`.
  const cause: unknown = error.cause;
  return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
}

function checkParams(params: DatasetParams): void {
  const name = params.name;
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new StageUserError(`unknown data set "${String(name)}"`, `with.name must be one of ${DATASET_NAMES.join(', ')}`);
  }
  if (name === 'csv') {
    if (params.train === undefined || params.test === undefined) {
      throw new StageUserError('a csv data set needs both `train` and `test` files', 'add with.train and with.test');
    }
    if (params.path !== undefined) throw new StageUserError('`path` applies to IDX data sets; a csv data set uses `train` and `test`');
    if (params.shape !== undefined && (params.shape.length !== 2 || !params.shape.every((n) => Number.isInteger(n) && n > 0))) {
      throw new StageUserError(`shape must be [height, width] in pixels, not [${params.shape.join(', ')}]`);
    }
    return;
  }
  for (const key of ['train', 'test', 'classes', 'shape'] as const) {
    if (params[key] !== undefined) throw new StageUserError(`\`${key}\` applies only to csv data sets, not ${name}`);
  }
}

/** The absolute paths of the files the stage reads, finding (or downloading) them as needed. */
export async function datasetFiles(params: DatasetParams, options: LocateOptions): Promise<string[]> {
  checkParams(params);
  if (params.name !== 'csv') return locateIdx(params.name, params.path, options);
  const files = [resolve(options.baseDir, params.train ?? ''), resolve(options.baseDir, params.test ?? '')];
  for (const file of files) {
    const problem = await notRegular(file);
    if (problem !== null) throw new StageUserError(`CSV file ${file}: ${problem}`);
  }
  return files;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** One split of a data set in memory. */
interface Part {
  readonly x: Uint8Array;
  readonly y: Int32Array;
  readonly count: number;
}

/** A loaded data set, ready to write. */
interface Loaded {
  readonly train: Part;
  readonly test: Part;
  readonly meta: DatasetMeta;
}

/**
 * Awaits files read in parallel, but when several fail reports the first in the order given, so the
 * same bad input always yields the same message whichever read happens to finish first.
 */
async function inOrder<T extends readonly unknown[]>(reads: { readonly [I in keyof T]: Promise<T[I]> }): Promise<T> {
  const settled = await Promise.allSettled(reads);
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

async function loadIdx(name: IdxDatasetName, files: readonly string[]): Promise<Loaded> {
  const [trainImages, trainLabels, testImages, testLabels] = files;
  if (trainImages === undefined || trainLabels === undefined || testImages === undefined || testLabels === undefined) {
    throw new Error(`expected four IDX files, got ${files.length}`);
  }
  const classes = 10;
  const [xTrain, yTrain, xTest, yTest] = await inOrder([
    readIdxImages(trainImages), readIdxLabels(trainLabels, classes), readIdxImages(testImages), readIdxLabels(testLabels, classes),
  ] as const);
  const hashes = [xTrain.raw, yTrain.raw, xTest.raw, yTest.raw].map(sha256Of);
  checkNotOtherDataset(name, files, hashes);
  const pairs = [[trainImages, xTrain.count, trainLabels, yTrain.count], [testImages, xTest.count, testLabels, yTest.count]] as const;
  for (const [imageFile, images, labelFile, labels] of pairs) {
    if (images !== labels) throw new StageUserError(`${imageFile} holds ${images} images but ${labelFile} holds ${labels} labels`);
  }
  if (xTrain.rows !== xTest.rows || xTrain.cols !== xTest.cols) {
    throw new StageUserError(`${trainImages} holds ${xTrain.rows} x ${xTrain.cols} images but ${testImages} holds ${xTest.rows} x ${xTest.cols}`);
  }
  return {
    train: { x: xTrain.data, y: Int32Array.from(yTrain.data), count: xTrain.count },
    test: { x: xTest.data, y: Int32Array.from(yTest.data), count: xTest.count },
    meta: {
      name,
      shape: [xTrain.rows, xTrain.cols],
      classes,
      classNames: name === 'fashion-mnist' ? [...FASHION_CLASSES] : Array.from({ length: classes }, (_, i) => String(i)),
      files: files.map((path, i) => ({ path, sha256: hashes[i] ?? '' })),
    },
  };
}

/** MNIST and Fashion-MNIST share file names: a known hash of the other one means the folder holds the wrong data set. */
function checkNotOtherDataset(name: IdxDatasetName, files: readonly string[], hashes: readonly string[]): void {
  for (const [other, source] of Object.entries(IDX_SOURCES)) {
    if (other === name || source.sha256 === null) continue;
    const known = new Set(Object.values(source.sha256));
    files.forEach((file, i) => {
      if (known.has(hashes[i] ?? '')) {
        throw new StageUserError(
          `${file} is a file of ${TITLES[other as IdxDatasetName]}, not of ${TITLES[name]}`,
          `keep each data set in a folder named after it (such as <dir>/${name}) and point with.path or SEEDFLOW_DATA_DIR there`,
        );
      }
    });
  }
}

async function loadCsv(params: DatasetParams, files: readonly string[]): Promise<Loaded> {
  const [trainFile, testFile] = files;
  if (trainFile === undefined || testFile === undefined) throw new Error(`expected two CSV files, got ${files.length}`);
  const label = params.label_column ?? 'label';
  const [train, test] = await inOrder([readCsv(trainFile, label), readCsv(testFile, label)]);
  if (train.width !== test.width) {
    throw new StageUserError(`${trainFile} has ${train.width} pixel columns but ${testFile} has ${test.width}`);
  }
  let maxLabel = -1;
  for (const part of [train, test]) for (const y of part.labels) maxLabel = Math.max(maxLabel, y);
  const classes = params.classes ?? maxLabel + 1;
  if (maxLabel >= classes) {
    const [part, file] = train.labels.includes(maxLabel) ? [train, trainFile] : [test, testFile];
    throw new StageUserError(`${file}: label ${maxLabel} of row ${part.labels.indexOf(maxLabel) + 1} is outside [0, ${classes})`, 'raise `classes` or fix the labels');
  }
  let shape: [number, number];
  if (params.shape !== undefined) {
    const [h = 0, w = 0] = params.shape;
    if (h * w !== train.width) throw new StageUserError(`shape [${h}, ${w}] needs ${h * w} pixels but ${trainFile} rows have ${train.width}`);
    shape = [h, w];
  } else {
    const side = Math.round(Math.sqrt(train.width));
    if (side * side !== train.width) {
      throw new StageUserError(`${trainFile} rows have ${train.width} pixels, which is not a square image`, 'give the image size as with.shape: [height, width]');
    }
    shape = [side, side];
  }
  return {
    train: { x: train.pixels, y: train.labels, count: train.count },
    test: { x: test.pixels, y: test.labels, count: test.count },
    meta: {
      name: 'csv',
      shape,
      classes,
      classNames: Array.from({ length: classes }, (_, i) => String(i)),
      files: [{ path: trainFile, sha256: train.sha256 }, { path: testFile, sha256: test.sha256 }],
    },
  };
}

/** Loads a data set (Fashion-MNIST, MNIST or CSV files) into `train_x/train_y/test_x/test_y.npy` and `meta.json`. */
export const stage: StageType<DatasetParams> = {
  name: 'dataset',
  version: 2,
  description: 'Loads Fashion-MNIST, MNIST or a pair of CSV files as flat uint8 images and int32 labels.',
  schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    additionalProperties: false,
    properties: {
      name: {
        description: 'The data set: fashion-mnist or mnist (four IDX files, found or downloaded), or csv (the train and test files).',
        enum: [...DATASET_NAMES],
        default: 'fashion-mnist',
      },
      path: {
        description: 'A folder holding the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each plain or .gz); a relative path is taken from the current folder. When absent, SEEDFLOW_DATA_DIR, the user cache folder and /usr/share/datasets are searched, then the files are downloaded.',
        type: 'string',
        minLength: 1,
      },
      train: { description: 'csv only: the CSV file of training rows (one label column and one column per pixel, optionally a header row).', type: 'string', minLength: 1 },
      test: { description: 'csv only: the CSV file of test rows, laid out like train.', type: 'string', minLength: 1 },
      label_column: {
        description: 'csv only: the column holding the label, as a header name or a 0-based index.',
        anyOf: [{ type: 'string', minLength: 1 }, { type: 'integer', minimum: 0 }],
        default: 'label',
      },
      classes: { description: 'csv only: the number of classes; inferred as the largest label plus one when absent.', type: 'integer', minimum: 2 },
      shape: {
        description: 'csv only: the image [height, width]; the square root of the pixel count when absent.',
        type: 'array',
        items: { type: 'integer', minimum: 1 },
        minItems: 2,
        maxItems: 2,
      },
    },
    if: { properties: { name: { const: 'csv' } }, required: ['name'] },
    then: { required: ['train', 'test'] },
  },
  files: (params, options) => datasetFiles(params, options),
  async run(_inputs, params, ctx) {
    // The files found (and hashed into the key) when the run was planned; outside the engine, look them up again.
    const files = ctx.files.length > 0 ? ctx.files : await datasetFiles(params, { allowDownload: false, baseDir: process.cwd(), log: (level, message) => ctx.log(level, message) });
    const data = params.name === 'csv' ? await loadCsv(params, files) : await loadIdx(params.name, files);
    const pixels = data.meta.shape[0] * data.meta.shape[1];
    ctx.log('info', `loaded ${data.train.count} training and ${data.test.count} test images from ${files.map((f) => basename(f)).join(', ')}`);
    await ctx.writeNpy('train_x.npy', ndarray('uint8', [data.train.count, pixels], data.train.x));
    await ctx.writeNpy('train_y.npy', ndarray('int32', [data.train.count], data.train.y));
    await ctx.writeNpy('test_x.npy', ndarray('uint8', [data.test.count, pixels], data.test.x));
    await ctx.writeNpy('test_y.npy', ndarray('int32', [data.test.count], data.test.y));
    await ctx.writeJson('meta.json', data.meta);
    return { metrics: { train: data.train.count, test: data.test.count, classes: data.meta.classes }, timings: {} };
  },
};
