import assert from 'node:assert/strict';
import { mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readPixels } from '../src/cache/pixels.js';
import { decodeNpy, encodeNpy, ndarray, NpyFormatError } from '../src/util/npy.js';

describe('.npy files', () => {
  it('round-trip every element type, whether or not the data lands aligned in the buffer', () => {
    const arrays = [
      ndarray('float32', [2, 3], Float32Array.from([1.5, -2, 3, 4, 5, 6])),
      ndarray('int32', [4], Int32Array.from([-1, 0, 1, 2 ** 31 - 1])),
      ndarray('uint8', [2, 2], Uint8Array.from([0, 1, 254, 255])),
      ndarray('float64', [1], Float64Array.from([Math.PI])),
    ];
    for (const array of arrays) {
      const bytes = Buffer.concat(encodeNpy(array));
      for (const shift of [0, 1, 3]) {
        // The same bytes at an odd offset of a larger buffer: the decoder must copy rather than view.
        const shifted = Buffer.alloc(bytes.length + shift);
        bytes.copy(shifted, shift);
        const back = decodeNpy(shifted.subarray(shift));
        assert.equal(back.dtype, array.dtype);
        assert.deepEqual(back.shape, array.shape);
        assert.deepEqual(Array.from(back.data), Array.from(array.data), `${array.dtype} shifted by ${shift}`);
      }
    }
  });

  it('rejects a file whose data is shorter than its shape says', () => {
    const bytes = Buffer.concat(encodeNpy(ndarray('float32', [3], Float32Array.from([1, 2, 3]))));
    assert.throws(() => decodeNpy(bytes.subarray(0, bytes.length - 4), 'x.npy'), (e: unknown) => e instanceof NpyFormatError && /x\.npy: expected 3 elements/.test(e.message));
  });
});

describe('pixels read once per process', () => {
  it('scales uint8 pixels, shares one array between readers, and reads a rewritten file afresh', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'seedflow-pixels-')), 'x.npy');
    await writeFile(file, encodeNpy(ndarray('uint8', [2, 2], Uint8Array.from([0, 51, 255, 102]))));
    const first = await readPixels(file);
    assert.deepEqual(first.shape, [2, 2]);
    assert.deepEqual(Array.from(first.pixels), [0, 0.2, 1, 0.4].map((v) => Math.fround(v)));
    assert.equal((await readPixels(file)).pixels, first.pixels, 'the second reader gets the same array');
    await writeFile(file, encodeNpy(ndarray('uint8', [1, 3], Uint8Array.from([255, 0, 255]))));
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    const second = await readPixels(file);
    assert.deepEqual(second.shape, [1, 3]);
    assert.deepEqual(Array.from(second.pixels), [1, 0, 1]);
  });

  it('passes float32 features through and rejects other element types with the file named', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'seedflow-pixels-'));
    await writeFile(join(dir, 'f.npy'), encodeNpy(ndarray('float32', [1, 2], Float32Array.from([0.5, 2]))));
    assert.deepEqual(Array.from((await readPixels(join(dir, 'f.npy'))).pixels), [0.5, 2]);
    await writeFile(join(dir, 'i.npy'), encodeNpy(ndarray('int32', [2], Int32Array.from([1, 2]))));
    await assert.rejects(readPixels(join(dir, 'i.npy')), /i\.npy is int32, expected uint8 pixels or float32 features/);
  });
});
