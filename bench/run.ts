/**
 * The benchmark suite (`npm run bench`): seedflow's k-means and MLP training
 * against scikit-learn and PyTorch on the real Fashion-MNIST, the quick
 * pipeline with one and two jobs, and a fully cached re-run against
 * `validate`. Prints a table and writes the figures into BENCHMARKS.md.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BenchContext, ROOT, UsageError, say, type BenchOptions, type Parts } from './context.js';
import { FULL_ROWS } from './data.js';
import { busyProcesses, describeMachine, LoadMonitor, type MachineInfo } from './machine.js';
import { benchCache } from './parts/cache.js';
import { benchFeatures } from './parts/features.js';
import { benchKmeans } from './parts/kmeans.js';
import { benchMlp } from './parts/mlp.js';
import { benchPipeline } from './parts/pipeline.js';
import { DEFAULT_PYTHON, keepPeerEnvironment, peerEnvironment, pythonInfo, type PythonInfo } from './python.js';
import { describeLoad, SECTIONS, textTable, updateBenchmarksFile, type SectionResult } from './report.js';

const USAGE = `npm run bench -- [options]

  --only PARTS       comma-separated parts to run: ${SECTIONS.join(', ')} (default: all)
  --quick            small sizes for a smoke run; BENCHMARKS.md is left alone unless --write
  --write            write BENCHMARKS.md even with --quick
  --dry-run          never write BENCHMARKS.md
  --pipeline FILE    the pipeline of the pipeline and cache parts (default: pipelines/quick.yaml)
  --python PATH      the interpreter with scikit-learn and PyTorch (default: ${DEFAULT_PYTHON})
  --rows N           training images for k-means and the MLP (default: ${FULL_ROWS})
  --iterations N     Lloyd iterations per k-means run (default: 20)
  --epochs N         MLP epochs per run; the best epoch counts (default: 3)
  --repeats N        runs of each command in the cache part (default: 5)
  --profile          profile k-means and the MLP even when they meet their targets (a miss always does)
  --peer-env-as-set  keep OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the Python peers (by default they
                     are removed so OpenBLAS picks its own, faster kernels; results are checked either way)`;

function positiveInteger(text: string | undefined, name: string, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${name} must be a whole number of at least ${min}, got "${text}"`);
  return value;
}

function parseOptions(argv: readonly string[]): BenchOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string', multiple: true },
      quick: { type: 'boolean' },
      write: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      pipeline: { type: 'string' },
      python: { type: 'string' },
      rows: { type: 'string' },
      iterations: { type: 'string' },
      epochs: { type: 'string' },
      repeats: { type: 'string' },
      profile: { type: 'boolean' },
      'peer-env-as-set': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  if (values.help) return null;
  keepPeerEnvironment(values['peer-env-as-set'] === true);
  const names = (values.only ?? []).flatMap((o) => o.split(',')).map((o) => o.trim()).filter((o) => o !== '');
  for (const name of names) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new UsageError(`--only: unknown part "${name}"; parts are ${SECTIONS.join(', ')}`);
  }
  const quick = values.quick === true;
  return {
    sections: names.length === 0 ? [...SECTIONS] : SECTIONS.filter((s) => names.includes(s)),
    quick,
    write: values['dry-run'] !== true && (!quick || values.write === true),
    pipeline: values.pipeline ?? join(ROOT, 'pipelines', 'quick.yaml'),
    python: values.python ?? DEFAULT_PYTHON,
    rows: positiveInteger(values.rows, '--rows', quick ? 5000 : FULL_ROWS, 100),
    iterations: positiveInteger(values.iterations, '--iterations', quick ? 5 : 20, 2),
    epochs: positiveInteger(values.epochs, '--epochs', quick ? 2 : 3),
    repeats: positiveInteger(values.repeats, '--repeats', quick ? 3 : 5),
    pipelineRepeats: quick ? 1 : 2,
    sets: quick ? ['epochs=1'] : [],
    profile: values.profile === true,
  };
}

function machineMarkdown(machine: MachineInfo, python: PythonInfo | { readonly missing: string }, busy: readonly string[], options: BenchOptions): string {
  const lines = [
    `- CPU: ${machine.cpu}, ${machine.cores} logical cores (${machine.usableCores} usable); memory ${machine.memoryGb} GB; ${machine.os}`,
    `- Node ${machine.node}; TensorFlow.js backend: ${machine.backend}`,
  ];
  if ('missing' in python) {
    lines.push(`- Python peers: ${python.missing}`);
  } else {
    lines.push(`- Python ${python.python}; NumPy ${python.numpy ?? 'missing'}; scikit-learn ${python.sklearn ?? 'missing'}; PyTorch ${python.torch ?? 'missing'}`);
    const pools = python.threadpools === null
      ? 'threadpoolctl missing'
      : python.threadpools.map((p) => `${p.library}${p.version ? ` ${p.version}` : ''} (${p.api ?? '?'}, ${p.threads ?? '?'} threads${p.architecture ? `, ${p.architecture} kernels` : ''})`).join('; ');
    lines.push(`- Native thread pools by default: ${pools}; PyTorch's default: ${python.torchDefaultThreads ?? '?'} thread(s)`);
    const env = Object.entries(python.env).map(([k, v]) => `${k}=${v}`);
    const { removed } = peerEnvironment();
    lines.push(
      `- Peers' environment: ${env.length > 0 ? env.join(', ') : 'no OPENBLAS_*, OMP_* or MKL_* variables'}` +
        (removed.length > 0 ? `; removed for them: ${removed.join(', ')}, so OpenBLAS picks its own kernels (\`--peer-env-as-set\` keeps them)` : ''),
    );
  }
  lines.push(
    '- Threads in the comparisons: scikit-learn limited with threadpoolctl to 1 and to 2 (OpenMP and BLAS), seedflow k-means with `threads` 1 and 2; ' +
      'PyTorch with torch.set_num_threads(n) and its BLAS and OpenMP pools capped to n with threadpoolctl (set_num_threads alone leaves OpenBLAS at 2), n = 1 against seedflow\'s single-threaded backend, and n = 2 for information.',
    `- Data: the first ${options.rows} Fashion-MNIST training images, scaled by 1/255`,
    `- Busy processes when the bench started: ${busy.length > 0 ? busy.join('; ') : 'none'}`,
  );
  return lines.join('\n');
}

const PARTS: Parts = {
  kmeans: benchKmeans,
  mlp: benchMlp,
  features: benchFeatures,
  pipeline: benchPipeline,
  cache: benchCache,
};

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions(argv);
  if (options === null) {
    say(USAGE);
    return 0;
  }
  const busy = await busyProcesses();
  if (busy.length > 0) say(`warning: other processes are busy, figures will be skewed: ${busy.join('; ')}`);
  const machine = describeMachine();
  const python = await pythonInfo(options.python);
  const dir = await mkdtemp(join(tmpdir(), 'seedflow-bench-'));
  const ctx = new BenchContext(options, dir, python);
  const reasons = new Set((['sklearn', 'torch'] as const).map((l) => ctx.whyMissing(l)).filter((r): r is string => r !== null));
  for (const reason of reasons) say(`note: ${reason}; its comparisons are skipped and seedflow's own figures still measured`);
  const needsPipeline = options.sections.includes('pipeline') || options.sections.includes('cache');
  if (needsPipeline && !existsSync(options.pipeline)) throw new UsageError(`pipeline ${options.pipeline} not found; pass --pipeline FILE`);
  const results: SectionResult[] = [];
  try {
    for (const section of options.sections) {
      say(`${section}:`);
      const monitor = new LoadMonitor();
      monitor.start();
      const part = await PARTS[section](ctx);
      const result: SectionResult = { ...part, load: monitor.stop() };
      results.push(result);
      say(`  ${describeLoad(result.load)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  say('');
  say(textTable(results.flatMap((r) => r.rows)));
  for (const r of results) for (const note of r.notes) say(`- ${note}`);
  if (options.write) {
    const file = join(ROOT, 'BENCHMARKS.md');
    await updateBenchmarksFile(file, machineMarkdown(machine, python, busy, options), results, new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC');
    say(`\nwrote ${file}`);
  } else {
    say('\nBENCHMARKS.md left alone (quick or dry run)');
  }
  if (ctx.failed) {
    process.stderr.write('\nbench FAILED: a correctness check did not hold (see above)\n');
    return 1;
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`bench: ${error.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
