import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Tf } from './tf.js';

/**
 * Matrix products on ONNX Runtime's native CPU kernels (MLAS), registered as TensorFlow.js kernels.
 *
 * The wasm backend's products run at about a third of a native BLAS's speed (128-bit SIMD, one
 * thread), and they are most of the work of k-means and training. When the optional package
 * `onnxruntime-node` is installed, seedflow replaces the wasm (or plain JS) backend's `BatchMatMul`
 * and `_FusedMatMul` kernels with ones that hand the operands, in place, to a one-node ONNX `Gemm`
 * graph run by ONNX Runtime on the calling thread. Everything else stays on the TensorFlow.js
 * backend. Shapes the Gemm cannot take (batched products, activations other than linear and ReLU)
 * go to the backend's own kernel.
 */

const require = createRequire(import.meta.url);

/** The ONNX Runtime package seedflow uses for products, when installed. */
export const MATMUL_PACKAGE = 'onnxruntime-node';

/** The compiled binding of `onnxruntime-node` for this platform, if present. Checked without loading it. */
function bindingFile(): string | null {
  let manifest: string;
  try {
    manifest = require.resolve(`${MATMUL_PACKAGE}/package.json`);
  } catch {
    return null;
  }
  const file = join(dirname(manifest), 'bin', 'napi-v6', process.platform, process.arch, 'onnxruntime_binding.node');
  return existsSync(file) ? file : null;
}

/**
 * Whether products will run on ONNX Runtime in this process, decided without loading it, so that
 * planning can put it in cache keys. `SEEDFLOW_MATMUL=backend` keeps the TensorFlow.js backend's own
 * kernels; `SEEDFLOW_MATMUL=onnxruntime` insists on ONNX Runtime (loading fails loudly without it).
 */
export function nativeMatMulWanted(backend: string): boolean {
  const wanted = process.env['SEEDFLOW_MATMUL'];
  if (wanted !== undefined && wanted !== '' && wanted !== 'backend' && wanted !== 'onnxruntime') {
    throw new Error(`SEEDFLOW_MATMUL must be "onnxruntime" or "backend", not "${wanted}"`);
  }
  if (wanted === 'backend' || (backend !== 'wasm' && backend !== 'cpu')) return false;
  return wanted === 'onnxruntime' || bindingFile() !== null;
}

// ---- a minimal ONNX model writer (protocol buffers wire format) ----

function varint(value: number): number[] {
  const out: number[] = [];
  let n = value;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const field = (number: number, wire: 0 | 2): number[] => varint((number << 3) | wire);
const int = (number: number, value: number): number[] => [...field(number, 0), ...varint(value)];
const message = (number: number, body: readonly number[]): number[] => [...field(number, 2), ...varint(body.length), ...body];
const text = (number: number, value: string): number[] => message(number, [...Buffer.from(value, 'utf8')]);

const FLOAT = 1;
const ATTRIBUTE_INT = 2;

/** ValueInfoProto of a float tensor whose dimensions are all named (symbolic). */
function floatInput(name: string, dims: readonly string[]): number[] {
  const shape = dims.flatMap((dim) => message(1, text(2, dim)));
  const tensorType = [...int(1, FLOAT), ...message(2, shape)];
  return [...text(1, name), ...message(2, message(1, tensorType))];
}

/** ModelProto of `Y = [Relu](A' B' [+ C])`, A' and B' transposed as asked, C a row of N biases. */
export function gemmModel(transA: boolean, transB: boolean, bias: boolean, relu: boolean): Uint8Array {
  const inputs = bias ? ['A', 'B', 'C'] : ['A', 'B'];
  const gemmOut = relu ? 'G' : 'Y';
  const attribute = (name: string, value: number): number[] => message(5, [...text(1, name), ...int(3, value), ...int(20, ATTRIBUTE_INT)]);
  const gemm = [...inputs.flatMap((i) => text(1, i)), ...text(2, gemmOut), ...text(4, 'Gemm'),
    ...attribute('transA', transA ? 1 : 0), ...attribute('transB', transB ? 1 : 0)];
  const nodes = [...message(1, gemm), ...(relu ? message(1, [...text(1, 'G'), ...text(2, 'Y'), ...text(4, 'Relu')]) : [])];
  const graph = [
    ...nodes,
    ...text(2, 'product'),
    ...message(11, floatInput('A', transA ? ['K', 'M'] : ['M', 'K'])),
    ...message(11, floatInput('B', transB ? ['N', 'K'] : ['K', 'N'])),
    ...(bias ? message(11, floatInput('C', ['N'])) : []),
    ...message(12, floatInput('Y', ['M', 'N'])),
  ];
  const opset = [...text(1, ''), ...int(2, 13)];
  return Uint8Array.from([...int(1, 8), ...message(8, opset), ...message(7, graph)]);
}

// ---- the kernels ----

interface OrtTensor { readonly data: Float32Array; readonly dims: readonly number[] }
interface OrtSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, OrtTensor>, fetches: Record<string, OrtTensor>, options: object): unknown;
}
interface OrtBinding {
  readonly binding: { InferenceSession: new () => OrtSession };
  initOrt(): void;
}
interface OrtCommon { Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor }

interface TensorInfo { readonly dataId: object; readonly shape: number[]; readonly dtype: string }
interface KernelArgs {
  readonly inputs: Record<string, TensorInfo | undefined>;
  readonly backend: unknown;
  readonly attrs?: Record<string, unknown>;
}
type KernelFunc = (args: KernelArgs) => TensorInfo | TensorInfo[];

/** Reads and writes float32 tensor data where a backend keeps it. */
interface Storage {
  /** A view on the tensor's data (a view into wasm memory, no copy, on the wasm backend). */
  read(backend: unknown, tensor: TensorInfo): Float32Array;
  /** A new output tensor and a view to write it through. */
  output(backend: unknown, shape: number[]): { info: TensorInfo; view: Float32Array };
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}
interface CpuBackend {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): TensorInfo;
}

const STORAGE: Record<'wasm' | 'cpu', Storage> = {
  wasm: {
    read: (backend, tensor) => (backend as WasmBackend).typedArrayFromHeap(tensor),
    output: (backend, shape) => {
      const info = (backend as WasmBackend).makeOutput(shape, 'float32');
      return { info, view: (backend as WasmBackend).typedArrayFromHeap(info) };
    },
  },
  cpu: {
    read: (backend, tensor) => (backend as CpuBackend).readSync(tensor.dataId),
    output: (backend, shape) => {
      const view = new Float32Array(shape.reduce((a, b) => a * b, 1));
      return { info: (backend as CpuBackend).makeTensorInfo(shape, 'float32', view), view };
    },
  },
};

/** What `installNativeMatMul` put in place, for the run's log. */
export interface NativeMatMul {
  /** e.g. "ONNX Runtime 1.30.0 (MLAS), 1 thread". */
  readonly description: string;
  /** Products run on ONNX Runtime and on the backend's own kernel, counted since installation. */
  readonly counts: { native: number; fallback: number };
}

let installed: NativeMatMul | undefined;

/**
 * Whether matrix products run on native code here (ONNX Runtime, or native TensorFlow). Then the
 * transposed forms `matMul(a, b, true, false)` and `matMul(a, b, false, true)` are as fast as a plain
 * product (on the wasm backend's own kernels they are about ten times slower, so callers transpose
 * explicitly there), and products are cheap beside JavaScript bookkeeping.
 */
export function productsNative(tf: Tf): boolean {
  return installed !== undefined || tf.getBackend() === 'tensorflow';
}

/**
 * Replaces the backend's `BatchMatMul` and `_FusedMatMul` kernels with ONNX Runtime's. Call once,
 * after the backend is set; throws when ONNX Runtime cannot load (the caller decides what to do).
 */
export function installNativeMatMul(tf: Tf, backendName: 'wasm' | 'cpu'): NativeMatMul {
  if (installed !== undefined) return installed;
  const ort = require(`${MATMUL_PACKAGE}/dist/binding.js`) as OrtBinding;
  // onnxruntime-common is onnxruntime-node's own dependency: resolve it from there.
  const common = createRequire(require.resolve(MATMUL_PACKAGE))('onnxruntime-common') as OrtCommon;
  const version = (require(`${MATMUL_PACKAGE}/package.json`) as { version: string }).version;
  ort.initOrt();
  const storage = STORAGE[backendName];
  const sessions = new Map<string, OrtSession>();
  const session = (transA: boolean, transB: boolean, bias: boolean, relu: boolean): OrtSession => {
    const id = `${+transA}${+transB}${+bias}${+relu}`;
    let found = sessions.get(id);
    if (found === undefined) {
      const model = gemmModel(transA, transB, bias, relu);
      found = new ort.binding.InferenceSession();
      found.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
        intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
        enableCpuMemArena: false, enableMemPattern: false,
      });
      sessions.set(id, found);
    }
    return found;
  };
  const counts = { native: 0, fallback: 0 };

  const override = (kernelName: 'BatchMatMul' | '_FusedMatMul'): void => {
    const original = tf.getKernel(kernelName, backendName);
    if (original === undefined) throw new Error(`the ${backendName} backend has no ${kernelName} kernel`);
    const fallback = original.kernelFunc as unknown as KernelFunc;
    const kernelFunc: KernelFunc = (args) => {
      const { a, b, bias, preluActivationWeights } = args.inputs;
      const attrs = args.attrs ?? {};
      const activation = (attrs['activation'] as string | undefined) ?? 'linear';
      const transA = attrs['transposeA'] === true;
      const transB = attrs['transposeB'] === true;
      const batched = (t: TensorInfo): boolean => t.shape.length < 2 || t.shape.slice(0, -2).some((d) => d !== 1);
      if (a === undefined || b === undefined || a.dtype !== 'float32' || b.dtype !== 'float32' || batched(a) || batched(b)
        || preluActivationWeights !== undefined || (activation !== 'linear' && activation !== 'relu')) {
        counts.fallback++;
        return fallback(args);
      }
      const [a1, a2] = a.shape.slice(-2) as [number, number];
      const [b1, b2] = b.shape.slice(-2) as [number, number];
      const m = transA ? a2 : a1;
      const n = transB ? b1 : b2;
      const k = transA ? a1 : a2;
      if (m === 0 || n === 0 || k === 0 || (bias !== undefined && (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== n))) {
        counts.fallback++;
        return fallback(args);
      }
      // Leading dimensions (all 1) are kept as the backend's own kernel keeps them.
      const leading = new Array<number>(Math.max(a.shape.length, b.shape.length) - 2).fill(1);
      // The output first: making it may grow wasm memory, which would leave earlier views detached.
      const out = storage.output(args.backend, [...leading, m, n]);
      const feeds: Record<string, OrtTensor> = {
        A: new common.Tensor('float32', storage.read(args.backend, a), [a1, a2]),
        B: new common.Tensor('float32', storage.read(args.backend, b), [b1, b2]),
      };
      if (bias !== undefined) feeds['C'] = new common.Tensor('float32', storage.read(args.backend, bias), [n]);
      session(transA, transB, bias !== undefined, activation === 'relu')
        .run(feeds, { Y: new common.Tensor('float32', out.view, [m, n]) }, {});
      counts.native++;
      return out.info;
    };
    tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({ ...original, kernelFunc: kernelFunc as unknown as typeof original.kernelFunc, setupFunc: undefined });
  };
  override('BatchMatMul');
  override('_FusedMatMul');
  installed = { description: `ONNX Runtime ${version} (MLAS), 1 thread`, counts };
  return installed;
}
