/**
 * Entry of a k-means worker thread: holds one block of rows on its own
 * TensorFlow.js backend and answers assignment steps for it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTf } from '../backend.js';
import { reportThreadError } from '../thread-channel.js';
import { KMeansShard } from './shard.js';
import type { ShardInit, ShardReply, ShardRequest } from './types.js';


async function serve(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('the k-means worker must run as a worker thread');
  const init = workerData as ShardInit;
  const { tf } = await loadTf();
  const shard = new KMeansShard(tf, init.points, init.rows, init.d, init.chunkRows);
  port.on('message', (request: ShardRequest) => {
    try {
      const output = shard.step(request);
      const buffers: ArrayBuffer[] = [];
      for (const array of [output.labels, output.scores, output.seconds, output.all, output.sums, output.counts]) if (array !== null) buffers.push(array.buffer as ArrayBuffer);
      const reply: ShardReply = { type: 'step', output };
      port.postMessage(reply, buffers);
    } catch (error) {
      reportThreadError(error);
    }
  });
  const ready: ShardReply = { type: 'ready' };
  port.postMessage(ready);
}

serve().catch(reportThreadError);
