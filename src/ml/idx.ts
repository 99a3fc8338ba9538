import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { StageUserError } from '../errors/user-error.js';

/** Magic number of an IDX file of unsigned bytes with three dimensions (images). */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an IDX file of unsigned bytes with one dimension (labels). */
export const IDX_LABELS_MAGIC = 0x00000801;

/** Images read from an IDX file: `count` images of `rows` x `cols` bytes, row-major. */
export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  /** `count * rows * cols` pixels, one image after another. */
  readonly data: Uint8Array;
}

/** Labels read from an IDX file, one byte each. */
export interface IdxLabels {
  readonly count: number;
  readonly data: Uint8Array;
}

const gunzipAsync = promisify(gunzip);

/** True when the bytes start with the gzip magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Reads a file, inflating it when it is gzip-compressed (recognised by its
 * magic bytes, not its name). Returns the raw bytes as read too, since their
 * hash is what identifies the file.
 */
export async function readMaybeGzip(file: string): Promise<{ readonly raw: Buffer; readonly bytes: Buffer }> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (error) {
    throw new StageUserError(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isGzip(raw)) return { raw, bytes: raw };
  try {
    return { raw, bytes: await gunzipAsync(raw) };
  } catch (error) {
    throw new StageUserError(
      `${file} is a damaged gzip file (${error instanceof Error ? error.message : String(error)}); it may be truncated`,
      'download or copy the file again',
    );
  }
}

function magicName(magic: number): string {
  if (magic === IDX_IMAGES_MAGIC) return 'an IDX image file';
  if (magic === IDX_LABELS_MAGIC) return 'an IDX label file';
  return 'not an IDX file of unsigned bytes';
}

function hex(magic: number): string {
  return `0x${magic.toString(16).padStart(8, '0')}`;
}

function checkMagic(bytes: Uint8Array, file: string, expected: number, what: string): void {
  if (bytes.length < 4) {
    throw new StageUserError(`${file} is too short to be ${what}: ${bytes.length} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expected) {
    throw new StageUserError(`${file} is not ${what}: magic number ${hex(magic)} (${magicName(magic)}), expected ${hex(expected)}`);
  }
}

function checkLength(bytes: Uint8Array, file: string, header: string, expected: number): void {
  if (bytes.length === expected) return;
  const how = bytes.length < expected ? 'truncated' : 'too long';
  throw new StageUserError(
    `${file} is ${how}: its header says ${header}, which needs ${expected} bytes (uncompressed), found ${bytes.length}`,
    'download or copy the file again',
  );
}

/** Parses the (uncompressed) bytes of an IDX image file; `file` names it in errors. */
export function parseIdxImages(bytes: Uint8Array, file: string): IdxImages {
  checkMagic(bytes, file, IDX_IMAGES_MAGIC, 'an IDX image file');
  if (bytes.length < 16) throw new StageUserError(`${file} is truncated: its IDX header needs 16 bytes, found ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(4, false);
  const rows = view.getUint32(8, false);
  const cols = view.getUint32(12, false);
  if (rows === 0 || cols === 0) throw new StageUserError(`${file} declares images of ${rows} x ${cols} pixels`);
  checkLength(bytes, file, `${count} images of ${rows} x ${cols}`, 16 + count * rows * cols);
  return { count, rows, cols, data: bytes.subarray(16) };
}

/**
 * Parses the (uncompressed) bytes of an IDX label file, checking that every
 * label lies in [0, classes); `file` names it in errors.
 */
export function parseIdxLabels(bytes: Uint8Array, file: string, classes: number): IdxLabels {
  checkMagic(bytes, file, IDX_LABELS_MAGIC, 'an IDX label file');
  if (bytes.length < 8) throw new StageUserError(`${file} is truncated: its IDX header needs 8 bytes, found ${bytes.length}`);
  const count = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, false);
  checkLength(bytes, file, `${count} labels`, 8 + count);
  const data = bytes.subarray(8);
  for (let i = 0; i < data.length; i++) {
    const label = data[i] ?? 0;
    if (label >= classes) {
      throw new StageUserError(`${file}: label ${label} of item ${i} is outside [0, ${classes})`);
    }
  }
  return { count, data };
}

/** Reads an IDX image file, plain or gzip-compressed. */
export async function readIdxImages(file: string): Promise<IdxImages & { readonly raw: Buffer }> {
  const { raw, bytes } = await readMaybeGzip(file);
  return { ...parseIdxImages(bytes, file), raw };
}

/** Reads an IDX label file, plain or gzip-compressed, with labels in [0, classes). */
export async function readIdxLabels(file: string, classes: number): Promise<IdxLabels & { readonly raw: Buffer }> {
  const { raw, bytes } = await readMaybeGzip(file);
  return { ...parseIdxLabels(bytes, file, classes), raw };
}
