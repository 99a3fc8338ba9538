import { Worker } from 'node:worker_threads';
import type { Tf } from '../backend.js';
import { threadChannel } from '../thread-channel.js';
import { KMeansShard } from './shard.js';
import type { BoundsParams, ShardHandle, ShardInit, ShardReply, ShardRequest, StepOutput, StepParams } from './types.js';

/** A shard served on this thread. */
export function localShard(shard: KMeansShard, lo: number, hi: number): ShardHandle {
  return {
    lo,
    hi,
    step: async (params) => shard.step(params),
    close: async () => shard.dispose(),
  };
}

/** A shard served by a worker thread, which gets its own copy of rows [lo, hi); resolves once the worker is ready. */
export async function workerShard(points: Float32Array, lo: number, hi: number, d: number, chunkRows: number): Promise<ShardHandle> {
  const rows = points.slice(lo * d, hi * d);
  const init: ShardInit = { points: rows, rows: hi - lo, d, chunkRows };
  const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, transferList: [rows.buffer] });
  const channel = threadChannel<ShardReply>(worker, 'k-means worker');
  try {
    await channel.next();
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return {
    lo,
    hi,
    async step(params) {
      const reply = channel.next();
      const request: ShardRequest = { type: 'step', ...params };
      worker.postMessage(request);
      const answer = await reply;
      if (answer.type !== 'step') throw new Error(`k-means worker answered ${answer.type} to a step`);
      return answer.output;
    },
    close: () => channel.close(),
  };
}

/** Splits the rows into at most `threads` blocks of whole chunks: the first on this thread, the others on worker threads (listed first). */
export async function openShards(tf: Tf, points: Float32Array, n: number, d: number, threads: number, chunkRows: number): Promise<ShardHandle[]> {
  const chunks = Math.ceil(n / chunkRows);
  const count = Math.max(1, Math.min(Math.floor(threads), chunks));
  // Blocks made of whole chunks compute exactly what one thread would, so the thread count does not change the result.
  const bounds = Array.from({ length: count + 1 }, (_, i) => Math.min(n, Math.round((i * chunks) / count) * chunkRows));
  // Workers take the later blocks and start loading their backends while this thread copies in the first block.
  const starting = Array.from({ length: count - 1 }, (_, i) => workerShard(points, bounds[i + 1] as number, bounds[i + 2] as number, d, chunkRows));
  const settled: PromiseSettledResult<ShardHandle>[] = [];
  try {
    const end = bounds[1] as number;
    const local = localShard(new KMeansShard(tf, points.subarray(0, end * d), end, d, chunkRows), 0, end);
    settled.push({ status: 'fulfilled', value: local });
  } catch (error) {
    settled.push({ status: 'rejected', reason: error });
  }
  settled.unshift(...(await Promise.allSettled(starting)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const handles = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed !== undefined) {
    await Promise.all(handles.map((h) => h.close()));
    throw failed.reason;
  }
  return handles;
}

/** One assignment step over every shard, merged into whole-data arrays. */
export async function assignAll(
  shards: readonly ShardHandle[],
  operands: { centersT: Float32Array; centerNorms: Float32Array },
  k: number,
  d: number,
  labels: Int32Array,
  scores: Float32Array,
  withSums: boolean,
  bounds?: BoundsParams,
): Promise<{ sums: Float64Array; counts: Int32Array }> {
  const params: StepParams = { ...operands, k, withSums, withSecond: false, withAll: false, rows: null, ...(bounds === undefined ? {} : { bounds }) };
  // Workers come first in the list, so their requests are posted before the in-process shard blocks this thread.
  const outputs = await Promise.all(shards.map((s) => s.step(params)));
  const sums = new Float64Array(withSums ? k * d : 0);
  const counts = new Int32Array(k);
  shards.forEach((shard, i) => {
    const out = outputs[i] as StepOutput;
    labels.set(out.labels, shard.lo);
    scores.set(out.scores, shard.lo);
    if (out.sums !== null) for (let q = 0; q < sums.length; q++) sums[q] = (sums[q] as number) + (out.sums[q] as number);
    if (out.counts !== null) for (let j = 0; j < k; j++) counts[j] = (counts[j] as number) + (out.counts[j] as number);
  });
  return { sums, counts };
}

