import type { StageType } from '../../src/stages/types.js';
import { ndarray } from '../../src/util/npy.js';
import { Random } from '../../src/util/random.js';

/** Gaussian blobs of uint8 pixels, one centre per class, reproducible from the seed. */
export function blobs(n: number, width: number, classes: number, seed: number, spread = 40): { x: Uint8Array; y: Int32Array } {
  const random = new Random(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: width }, () => random.int(256)));
  const x = new Uint8Array(n * width);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % classes;
    y[i] = label;
    const centre = centres[label] ?? [];
    for (let j = 0; j < width; j++) x[i * width + j] = Math.min(255, Math.max(0, Math.round((centre[j] ?? 0) + spread * random.normal())));
  }
  return { x, y };
}

export interface SetData {
  readonly x: Uint8Array;
  readonly y: Int32Array;
}

/** A stand-in for the `split` stage that writes the given sets. */
export function fakeSplit(width: number, classes: number, sets: { train: SetData; val: SetData; test: SetData }, classNames?: string[]): StageType<Record<string, never>> {
  const write = async (ctx: Parameters<StageType['run']>[2], name: string, set: SetData): Promise<void> => {
    await ctx.writeNpy(`x_${name}.npy`, ndarray('uint8', [set.y.length, width], set.x));
    await ctx.writeNpy(`y_${name}.npy`, ndarray('int32', [set.y.length], set.y));
  };
  return {
    name: 'split',
    version: 1,
    schema: {},
    async run(_inputs, _params, ctx) {
      await write(ctx, 'train', sets.train);
      await write(ctx, 'val', sets.val);
      await write(ctx, 'test', sets.test);
      await ctx.writeJson('meta.json', { classes, shape: [width], ...(classNames !== undefined ? { classNames } : {}) });
    },
  };
}

/** A stand-in for the `seed-labels` stage: rows of x_train by index, or feature rows; `trueLabelsUsed` when the labels cost fewer (propagated). */
export function fakeSeeds(seed: { indices: Int32Array; y: Int32Array } | { x: Float32Array; width: number; y: Int32Array }, trueLabelsUsed?: number): StageType<Record<string, never>> {
  return {
    name: 'seed-labels',
    version: 1,
    schema: {},
    async run(_inputs, _params, ctx) {
      await ctx.writeNpy('y.npy', ndarray('int32', [seed.y.length], seed.y));
      if ('indices' in seed) await ctx.writeNpy('indices.npy', ndarray('int32', [seed.indices.length], seed.indices));
      else await ctx.writeNpy('x.npy', ndarray('float32', [seed.y.length, seed.width], seed.x));
      return { metrics: { samples: seed.y.length, ...(trueLabelsUsed !== undefined ? { trueLabelsUsed } : {}) }, timings: {}, details: { strategy: 'fake' } };
    },
  };
}

