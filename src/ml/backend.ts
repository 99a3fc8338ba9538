import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The TensorFlow.js backends seedflow can run on, fastest first. */
export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
/** A backend's name, as TensorFlow.js spells it. */
export type BackendName = (typeof BACKENDS)[number];

/** The TensorFlow.js namespace. */
export type Tf = typeof import('@tensorflow/tfjs');

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

let loaded: Promise<{ tf: Tf; backend: BackendName }> | undefined;

/**
 * Loads TensorFlow.js once per process on the detected backend, falling back
 * to the next one when it cannot initialise. `onFallback` hears why.
 */
export function loadTf(onFallback: (message: string) => void = () => {}): Promise<{ tf: Tf; backend: BackendName }> {
  loaded ??= (async () => {
    const first = detectBackend();
    for (const backend of BACKENDS.slice(BACKENDS.indexOf(first))) {
      try {
        if (backend === 'tensorflow') {
          const tf = (await import('@tensorflow/tfjs-node' as string)) as Tf;
          await tf.setBackend('tensorflow');
          return { tf, backend };
        }
        const tf = await import('@tensorflow/tfjs');
        if (backend === 'wasm') {
          const wasm = await import('@tensorflow/tfjs-backend-wasm');
          const dir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
          wasm.setWasmPaths(`${dir}/`);
        }
        if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
        await tf.ready();
        return { tf, backend };
      } catch (error) {
        onFallback(`TensorFlow backend "${backend}" unavailable (${error instanceof Error ? error.message : String(error)}); trying the next one`);
      }
    }
    throw new Error('no TensorFlow.js backend could be initialised');
  })();
  return loaded;
}
