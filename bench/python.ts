import { fileURLToPath } from 'node:url';
import { checkFinished, runProcess } from './processes.js';

/** The interpreter with Debian's python3-sklearn and python3-torch; `--python` picks another. */
export const DEFAULT_PYTHON = '/usr/bin/python3';

/** One native thread pool a Python library loaded, as threadpoolctl reports it. */
export interface ThreadPool {
  readonly api: string | null;
  readonly library: string;
  readonly version: string | null;
  readonly threads: number | null;
  readonly architecture: string | null;
}

/** The Python side of the machine: versions and thread pools. A null version means the peer is missing. */
export interface PythonInfo {
  readonly python: string;
  readonly numpy: string | null;
  readonly sklearn: string | null;
  readonly sklearnError?: string;
  readonly torch: string | null;
  readonly torchError?: string;
  readonly torchDefaultThreads?: number;
  /** BLAS and OpenMP pools with their default sizes; null without threadpoolctl. */
  readonly threadpools: readonly ThreadPool[] | null;
  /** OPENBLAS_*, OMP_* and MKL_* variables as the peers see them. */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Variables that pin OpenBLAS to older kernels (set on some machines because old OpenBLAS builds
 * misbehave on new processors). They slow the peers, so by default the peers run without them and
 * OpenBLAS picks its own kernels; every peer's results are checked (products against float64,
 * k-means inertias against seedflow's), so a build that computes wrong fails the bench loudly.
 */
export const PINNING_VARIABLES = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;

let keepPinning = false;

/** Runs the peers with the OpenBLAS variables as set (`--peer-env-as-set`). */
export function keepPeerEnvironment(keep: boolean): void {
  keepPinning = keep;
}

/** The environment the peers run in, and which pinning variables were removed from it. */
export function peerEnvironment(): { env: NodeJS.ProcessEnv; removed: string[] } {
  const env = { ...process.env };
  const removed: string[] = [];
  if (!keepPinning) {
    for (const name of PINNING_VARIABLES) {
      if (env[name] !== undefined) removed.push(`${name}=${env[name]}`);
      delete env[name];
    }
  }
  return { env, removed };
}

function peerScript(name: string): string {
  return fileURLToPath(new URL(`../../bench/peers/${name}`, import.meta.url));
}

/** What the interpreter offers, or why it cannot be used at all. */
export async function pythonInfo(python: string): Promise<PythonInfo | { readonly missing: string }> {
  try {
    const finished = await runProcess(python, [peerScript('info.py')], { env: peerEnvironment().env });
    checkFinished(python, finished);
    return JSON.parse(finished.stdout) as PythonInfo;
  } catch (error) {
    return { missing: error instanceof Error ? error.message.split('\n')[0] ?? error.message : String(error) };
  }
}

/** Runs a peer script (from bench/peers) and parses the JSON object it prints last. */
export async function runPeer<T>(python: string, script: string, args: readonly string[]): Promise<T> {
  const finished = await runProcess(python, [peerScript(script), ...args], { env: peerEnvironment().env });
  checkFinished(`the peer ${script}`, finished);
  const last = finished.stdout.trimEnd().split('\n').pop() ?? '';
  return JSON.parse(last) as T;
}
