import { stat } from 'node:fs/promises';
import { readNpy } from '../util/npy.js';

/**
 * Images as float32 in [0, 1], decoded once per process. The stages a worker runs one after another
 * (every kmeans, train and evaluate of a grid) read the same split; decoding and scaling it again
 * for each took longer than a small stage's own work. Entries are keyed by path, size and time, so
 * a recomputed artifact is read afresh, and the least recently used go once they pass `LIMIT_BYTES`.
 */
const LIMIT_BYTES = 512 * 2 ** 20;

interface Entry { readonly id: string; readonly pixels: Float32Array; readonly shape: readonly number[] }
const entries = new Map<string, Promise<Entry>>();
const sizes = new Map<string, number>();

/** Pixels as the network and k-means see them: uint8 values scaled by 1/255 to float32. */
export function unitPixels(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = (bytes[i] as number) / 255;
  return out;
}

/** uint8 pixels scaled by 1/255, or float32 features as they are. */
function toUnit(data: ArrayLike<number>, dtype: string, file: string): Float32Array {
  if (dtype === 'float32') return data as Float32Array;
  if (dtype !== 'uint8') throw new Error(`${file} is ${dtype}, expected uint8 pixels or float32 features`);
  return unitPixels(data as Uint8Array);
}

/**
 * The images of an `.npy` file as float32 in [0, 1] with their shape. The array is shared by every
 * caller in the process: read it, never write to it.
 */
export async function readPixels(file: string): Promise<{ pixels: Float32Array; shape: readonly number[] }> {
  const info = await stat(file);
  const id = `${file}\0${info.size}\0${info.mtimeMs}`;
  let entry = entries.get(file);
  if (entry === undefined || (await entry.catch(() => null))?.id !== id) {
    entry = readNpy(file).then((array) => ({ id, pixels: toUnit(array.data, array.dtype, file), shape: array.shape }));
    entries.set(file, entry);
    entry.then((e) => remember(file, e.pixels.byteLength), () => entries.delete(file));
  } else {
    // Most recently used last.
    entries.delete(file);
    entries.set(file, entry);
  }
  const { pixels, shape } = await entry;
  return { pixels, shape };
}

function remember(file: string, bytes: number): void {
  sizes.set(file, bytes);
  let total = 0;
  for (const size of sizes.values()) total += size;
  for (const oldest of entries.keys()) {
    if (total <= LIMIT_BYTES || oldest === file) break;
    total -= sizes.get(oldest) ?? 0;
    entries.delete(oldest);
    sizes.delete(oldest);
  }
}
