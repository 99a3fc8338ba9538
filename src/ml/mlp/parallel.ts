/**
 * Data-parallel gradients for {@link trainMlp}: worker threads, each with its
 * own TensorFlow.js backend, compute the gradients of parts of a batch while
 * the training thread computes its own part and applies the optimizer.
 * Everything that crosses threads per step lives in shared memory, so a step
 * costs one small message each way.
 */
import { Worker } from 'node:worker_threads';
import { threadChannel, type ThreadErrorReply } from '../thread-channel.js';
import type { MlpSpec, ResolvedMlp } from './spec.js';

/** Where each parameter tensor (kernel, bias, kernel, bias...) sits in a flat float32 array. */
export interface ParamLayout {
  readonly shapes: readonly (readonly number[])[];
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
  /** Values in all parameters together. */
  readonly total: number;
}

/** The flat layout of a model's parameters, in the order the training loop keeps them. */
export function paramLayout(net: ResolvedMlp): ParamLayout {
  const shapes = net.dense.flatMap((d) => [[d.inputs, d.units], [d.units]]);
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const offsets: number[] = [];
  let total = 0;
  for (const size of sizes) {
    offsets.push(total);
    total += size;
  }
  return { shapes, offsets, sizes, total };
}

/**
 * The bounds of `parts` consecutive parts of `size` rows: part i is rows
 * [bounds[i], bounds[i + 1]). Earlier parts get the extra rows, so the first
 * one (the training thread's) is empty only when the batch is.
 */
export function partBounds(size: number, parts: number): number[] {
  return Array.from({ length: parts + 1 }, (_, i) => Math.min(size, Math.ceil((i * size) / parts)));
}

/** What a gradient worker receives at start; the buffers are shared with the training thread. */
export interface GradientWorkerInit {
  readonly spec: MlpSpec;
  /** The current parameters, written by the training thread before each step. */
  readonly params: SharedArrayBuffer;
  /** The worker's gradients, written by it during a step. */
  readonly grads: SharedArrayBuffer;
  /** The rows of the worker's part, `[maxRows, inputs]` float32. */
  readonly x: SharedArrayBuffer;
  /** Their labels, `[maxRows]` int32. */
  readonly y: SharedArrayBuffer;
}

/** A step for a gradient worker: its part is the first `rows` rows of its buffers. */
export interface GradientRequest {
  readonly type: 'step';
  readonly rows: number;
  /** The whole batch's size, which the loss and gradients are divided by. */
  readonly divisor: number;
}

/** A gradient worker's answers. */
export type GradientReply =
  | { readonly type: 'ready' }
  | { readonly type: 'step'; readonly loss: number; readonly correct: number }
  | ThreadErrorReply;

/** The outcome of a worker's step; its gradients are in {@link GradientWorker.grads}. */
export interface PartResult {
  /** The part's cross-entropy sum divided by the batch size. */
  readonly loss: number;
  readonly correct: number;
}

/** One worker thread, seen from the training thread. */
export interface GradientWorker {
  /** Where the training thread puts the rows of the worker's next part. */
  readonly x: Float32Array;
  readonly y: Int32Array;
  /** The worker's gradients of its last step, in {@link ParamLayout} order. */
  readonly grads: Float32Array;
  /** Starts a step on the first `rows` rows of `x` and `y`. */
  step(rows: number, divisor: number): Promise<PartResult>;
  close(): Promise<void>;
}

/** Worker threads sharing one parameter buffer. */
export interface GradientPool {
  /** The parameters the workers read; write them before starting steps. */
  readonly params: Float32Array;
  readonly workers: readonly GradientWorker[];
  close(): Promise<void>;
}

function startWorker(init: GradientWorkerInit): Promise<GradientWorker> {
  const worker = new Worker(new URL('./parallel-worker.js', import.meta.url), { workerData: init });
  const channel = threadChannel<GradientReply>(worker, 'MLP gradient worker');
  const close = (): Promise<void> => channel.close();
  const handle: GradientWorker = {
    x: new Float32Array(init.x),
    y: new Int32Array(init.y),
    grads: new Float32Array(init.grads),
    async step(rows, divisor) {
      const reply = channel.next();
      const request: GradientRequest = { type: 'step', rows, divisor };
      worker.postMessage(request);
      const answer = await reply;
      if (answer.type !== 'step') throw new Error(`MLP gradient worker answered ${answer.type} to a step`);
      return { loss: answer.loss, correct: answer.correct };
    },
    close,
  };
  return channel.next().then(
    () => handle,
    async (error: unknown) => {
      await close();
      throw error;
    },
  );
}

/**
 * Starts `count` gradient workers for a model, each taking parts of up to
 * `maxRows` rows, and waits until their backends are ready.
 */
export async function openGradientPool(spec: MlpSpec, net: ResolvedMlp, count: number, maxRows: number): Promise<GradientPool> {
  const layout = paramLayout(net);
  const paramsBuffer = new SharedArrayBuffer(layout.total * Float32Array.BYTES_PER_ELEMENT);
  const started = await Promise.allSettled(
    Array.from({ length: count }, () =>
      startWorker({
        spec,
        params: paramsBuffer,
        grads: new SharedArrayBuffer(layout.total * Float32Array.BYTES_PER_ELEMENT),
        x: new SharedArrayBuffer(maxRows * net.inputs * Float32Array.BYTES_PER_ELEMENT),
        y: new SharedArrayBuffer(maxRows * Int32Array.BYTES_PER_ELEMENT),
      }),
    ),
  );
  const workers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(workers.map((w) => w.close()));
    throw failed.reason;
  }
  return {
    params: new Float32Array(paramsBuffer),
    workers,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
