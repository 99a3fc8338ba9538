import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
