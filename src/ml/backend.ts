import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { installNativeMatMul, nativeMatMulWanted, type NativeMatMul } from './native-matmul.js';
import type { Tf } from './tf.js';

/** The TensorFlow.js backends seedflow can run on, fastest first. */
export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
/** A backend's name, as TensorFlow.js spells it. */
export type BackendName = (typeof BACKENDS)[number];

/** The TensorFlow.js namespace, named here too for the callers that load it through this module. */
export type { Tf } from './tf.js';

const require = createRequire(import.meta.url);

function resolves(name: string): string | null {
  try {
    return require.resolve(name);
  } catch {
    return null;
  }
}

/** True when tfjs-node is installed with its native library in place (checked without loading it). */
function nativeInstalled(): boolean {
  const main = resolves('@tensorflow/tfjs-node');
  if (main === null) return false;
  const root = join(dirname(main), '..');
  const deps = join(root, 'deps', 'lib');
  return existsSync(deps);
}

/**
 * The backend this process will use, decided without loading TensorFlow, so
 * that planning can put it in the cache keys of numeric stages. The
 * `SEEDFLOW_BACKEND` environment variable picks one explicitly.
 */
export function detectBackend(): BackendName {
  const wanted = process.env['SEEDFLOW_BACKEND'];
  if (wanted !== undefined && wanted !== '') {
    if (!(BACKENDS as readonly string[]).includes(wanted)) {
      throw new Error(`SEEDFLOW_BACKEND must be one of ${BACKENDS.join(', ')}, not "${wanted}"`);
    }
    return wanted as BackendName;
  }
  if (nativeInstalled()) return 'tensorflow';
  if (resolves('@tensorflow/tfjs-backend-wasm') !== null) return 'wasm';
  return 'cpu';
}

/** Suffix of a compute id whose matrix products run on ONNX Runtime. */
const NATIVE_MATMUL = '+onnxruntime';

/**
 * What numeric stages will compute on, decided without loading anything: the backend's name, plus
 * `+onnxruntime` when its matrix products run on ONNX Runtime (see native-matmul.ts). This is the
 * `backend` field of numeric stages' cache keys, since results differ in the last bits between them.
 */
export function detectCompute(): string {
  const backend = detectBackend();
  return nativeMatMulWanted(backend) ? `${backend}${NATIVE_MATMUL}` : backend;
}

/** Whether a compute id's matrix products are native code (native TensorFlow, or ONNX Runtime). */
export function nativeProductsIn(id: string): boolean {
  return id === 'tensorflow' || id.endsWith(NATIVE_MATMUL);
}

/** A compute id for people: "wasm (matrix products on ONNX Runtime)". */
export function describeCompute(id: string): string {
  return id.endsWith(NATIVE_MATMUL) ? `${id.slice(0, -NATIVE_MATMUL.length)} (matrix products on ONNX Runtime)` : id;
}

/** TensorFlow.js as loaded in this process. */
export interface LoadedTf {
  readonly tf: Tf;
  readonly backend: BackendName;
  /** The backend and its product kernels, as `detectCompute` spells it. */
  readonly compute: string;
  /** Present when products run on ONNX Runtime. */
  readonly matmul?: NativeMatMul;
}

let loaded: Promise<LoadedTf> | undefined;

/**
 * Loads TensorFlow.js once per process on the detected backend, falling back
 * to the next one when it cannot initialise, and puts ONNX Runtime's products
 * in place where they are wanted. `onFallback` hears why something was skipped.
 */
export function loadTf(onFallback: (message: string) => void = () => {}): Promise<LoadedTf> {
  loaded ??= (async () => {
    const first = detectBackend();
    for (const backend of BACKENDS.slice(BACKENDS.indexOf(first))) {
      try {
        if (backend === 'tensorflow') {
          const tf = (await import('@tensorflow/tfjs-node' as string)) as Tf;
          await tf.setBackend('tensorflow');
          return { tf, backend, compute: backend };
        }
        const tf = await import('@tensorflow/tfjs');
        if (backend === 'wasm') {
          const wasm = await import('@tensorflow/tfjs-backend-wasm');
          const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
          wasm.setWasmPaths(`${dir}/`);
        }
        if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
        await tf.ready();
        if (!nativeMatMulWanted(backend)) return { tf, backend, compute: backend };
        try {
          const matmul = installNativeMatMul(tf, backend);
          return { tf, backend, compute: `${backend}${NATIVE_MATMUL}`, matmul };
        } catch (error) {
          if (process.env['SEEDFLOW_MATMUL'] === 'onnxruntime') throw error;
          onFallback(`ONNX Runtime could not load (${error instanceof Error ? error.message : String(error)}); matrix products stay on the ${backend} backend`);
          return { tf, backend, compute: backend };
        }
      } catch (error) {
        onFallback(`TensorFlow backend "${backend}" unavailable (${error instanceof Error ? error.message : String(error)}); trying the next one`);
      }
    }
    throw new Error('no TensorFlow.js backend could be initialised');
  })();
  return loaded;
}
