import { readFile } from 'node:fs/promises';

/** Element types that seedflow stores; each maps to one NumPy dtype. */
export const DTYPES = ['float32', 'float64', 'int32', 'uint8', 'int8', 'uint16', 'int16', 'uint32'] as const;
/** A stored element type. */
export type DType = (typeof DTYPES)[number];

/** The typed array that backs each dtype. */
export interface TypedArrayOf {
  float32: Float32Array;
  float64: Float64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
}

/** Any typed array that an NdArray can hold. */
export type TypedArray = TypedArrayOf[DType];

/** A dense row-major array with its shape, as read from or written to `.npy`. */
export interface NdArray<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: TypedArrayOf[D];
}

const DESCR: Record<DType, string> = {
  float32: '<f4', float64: '<f8', int32: '<i4', uint8: '|u1', int8: '|i1', uint16: '<u2', int16: '<i2', uint32: '<u4',
};

const CTOR = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, uint8: Uint8Array,
  int8: Int8Array, uint16: Uint16Array, int16: Int16Array, uint32: Uint32Array,
} as const;

/** Builds an NdArray, checking that the data fills the shape exactly. */
export function ndarray<D extends DType>(dtype: D, shape: readonly number[], data: TypedArrayOf[D]): NdArray<D> {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new RangeError(`shape [${shape.join(', ')}] needs ${size} elements, got ${data.length}`);
  return { dtype, shape: [...shape], data };
}

function dtypeOf(data: TypedArray): DType {
  for (const d of DTYPES) if (data instanceof CTOR[d]) return d;
  throw new TypeError('unsupported typed array');
}

/**
 * Encodes an array as NumPy `.npy` version 1.0 bytes (little-endian, C order): the header, then a
 * view of the array's own data (not a copy), ready for `writeFile`.
 */
export function encodeNpy(array: NdArray): readonly Buffer[] {
  const dtype = dtypeOf(array.data);
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // The header, with magic (6), version (2) and length (2), is padded to a multiple of 64 and ends in '\n'.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return [head, Buffer.from(header, 'latin1'), body];
}

/** An `.npy` file that cannot be read, with the reason. */
export class NpyFormatError extends Error {}

/** Decodes `.npy` bytes (versions 1-3, little-endian, C order). */
export function decodeNpy(bytes: Buffer, name = 'array'): NdArray {
  if (bytes.length < 10 || bytes.toString('latin1', 0, 6) !== '\x93NUMPY') throw new NpyFormatError(`${name}: not an .npy file`);
  const major = bytes[6];
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new NpyFormatError(`${name}: malformed .npy header`);
  if (fortran === 'True') throw new NpyFormatError(`${name}: Fortran-order arrays are not supported`);
  const dtype = DTYPES.find((d) => DESCR[d] === descr || DESCR[d].replace('|', '<') === descr);
  if (dtype === undefined) throw new NpyFormatError(`${name}: unsupported dtype ${descr}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const size = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const Ctor = CTOR[dtype];
  if (bytes.length - offset !== size * Ctor.BYTES_PER_ELEMENT) throw new NpyFormatError(`${name}: expected ${size} elements of ${dtype}, file is truncated or too long`);
  // A typed array's offset must be a multiple of its element size: view the bytes where it is, else copy.
  if ((bytes.byteOffset + offset) % Ctor.BYTES_PER_ELEMENT === 0) return { dtype, shape, data: new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset + offset, size) } as NdArray;
  const copy = new Uint8Array(size * Ctor.BYTES_PER_ELEMENT);
  copy.set(bytes.subarray(offset));
  return { dtype, shape, data: new Ctor(copy.buffer) } as NdArray;
}

/** Reads an `.npy` file. */
export async function readNpy(file: string): Promise<NdArray> {
  return decodeNpy(await readFile(file), file);
}
