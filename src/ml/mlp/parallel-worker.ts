/**
 * Entry of an MLP gradient worker thread: on each step, reads the current
 * parameters and its part of the batch from shared memory, computes that
 * part's loss and gradients on its own TensorFlow.js backend, and writes the
 * gradients back to shared memory.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Tensor } from '@tensorflow/tfjs';
import { loadTf } from '../backend.js';
import { reportThreadError } from '../thread-channel.js';
import { batchGradients } from './model.js';
import { paramLayout, type GradientReply, type GradientRequest, type GradientWorkerInit } from './parallel.js';
import { resolveMlp } from './spec.js';

async function serve(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('the MLP gradient worker must run as a worker thread');
  const init = workerData as GradientWorkerInit;
  const { tf } = await loadTf();
  const net = resolveMlp(init.spec);
  const layout = paramLayout(net);
  const params = new Float32Array(init.params);
  const grads = new Float32Array(init.grads);
  const x = new Float32Array(init.x);
  const y = new Int32Array(init.y);
  port.on('message', (request: GradientRequest) => {
    try {
      const { rows, divisor } = request;
      // Tensors made from shared views may alias them (the CPU backend does not copy), but none outlives this step.
      const [loss, correct, ...parts] = tf.tidy(() => {
        const ps = layout.shapes.map((shape, j) => tf.tensor(params.subarray(layout.offsets[j], (layout.offsets[j] ?? 0) + (layout.sizes[j] ?? 0)), [...shape]));
        const xb = tf.tensor2d(x.subarray(0, rows * net.inputs), [rows, net.inputs]);
        const yb = tf.tensor1d(y.subarray(0, rows), 'int32');
        const g = batchGradients(tf, net, ps, xb, yb, divisor);
        return [g.loss, g.correct, ...g.grads];
      }) as Tensor[];
      parts.forEach((g, j) => grads.set(g.dataSync() as Float32Array, layout.offsets[j]));
      const reply: GradientReply = { type: 'step', loss: (loss as Tensor).dataSync()[0] ?? NaN, correct: (correct as Tensor).dataSync()[0] ?? NaN };
      tf.dispose([loss as Tensor, correct as Tensor, ...parts]);
      port.postMessage(reply);
    } catch (error) {
      reportThreadError(error);
    }
  });
  const ready: GradientReply = { type: 'ready' };
  port.postMessage(ready);
}

serve().catch(reportThreadError);
