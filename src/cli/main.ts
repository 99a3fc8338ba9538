#!/usr/bin/env node
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Store, StoreFileError, StoreLockedError } from '../cache/store.js';
import { DiagnosticError, suggest } from '../errors/diagnostic.js';
import { checkPipeline, preparePlan } from '../executor/prepare.js';
import type { RunEvent } from '../executor/events.js';
import { describeFailure } from '../executor/failure.js';
import { SEEDFLOW_VERSION } from '../executor/task.js';
import { InstanceGraph } from '../plan/instance-graph.js';
import { decide, selects, type StoreFacts } from '../plan/states.js';
import type { Plan } from '../plan/types.js';
import { EXIT } from './exit-codes.js';
import { createLogger } from './logger.js';
import { describeEvent, formatDiagnostics, formatPlan, table } from './output.js';
import { describeFsError } from '../util/files.js';
import { FlagError, locateStore, moduleRoots, storeRoot } from './options.js';
import { parseDuration, QueueError, QueueUsageError, queueRows, queueUrlOf } from './queue.js';
import { editorSchema, stageSchema } from './schema.js';
import { describeStore } from './store-location.js';
import type { TaskRunner } from '../executor/runner.js';

const HELP = `seedflow: declarative, cached, parallel pipelines for cluster-seeded learning

Usage: seedflow <command> [options]

Commands:
  validate <pipeline>         check a pipeline file; print every problem with its position
  plan <pipeline>             show each stage instance, its key, and whether it is cached or why it will run
  run <pipeline>              run what is not cached, in parallel
  dag <pipeline>              print the stage graph (--format mermaid|dot, --instances)
  schema [stage-type]         print the pipeline's JSON Schema, or one stage type's
  gc <pipeline>...            remove artifacts that none of the given pipelines reaches (dry run unless --yes)
  doctor                      print versions, the TensorFlow backend, cores and where the data is found
                              (with --queue: the Redis version, its maxmemory-policy and the live workers)
  worker                      take stage tasks from the queue of a shared store and run them
                              (--queue URL --store DIR [--jobs N] [--name NAME] [--idle-exit DURATION])
  results <pipeline>          every grid cell's metrics; cells not computed yet are listed as missing
  report <pipeline>           write one self-contained HTML report with charts (-o FILE, --cell CELL)
  runs [pipeline]             list the runs recorded in the store's history, newest first
  compare <run-a> <run-b>     what differs between two recorded runs: params and metrics per cell
  help                        this text

Options:
  --set NAME=VALUE            override a param or a matrix axis (repeatable); NAME=A,B or NAME=range(START,STOP,STEP) sweeps
  --store DIR                 the artifact store (default: the nearest artifacts/ from the pipeline's folder up, or next to it)
  --jobs N                    stages run at once (default: the number of cores, here ${availableParallelism()})
  --keep-going                after a failure, finish the branches that do not depend on it
  --force STAGE               recompute STAGE and everything downstream of it (repeatable)
  --only STAGE                run only STAGE and what it needs (repeatable)
  --executor local|bullmq     run: where stages execute (default local; bullmq: jobs on --queue)
  --queue URL                 run, worker, doctor: redis://HOST:PORT[/DB] (default: SEEDFLOW_QUEUE)
  --name NAME                 worker: the name it is shown under (default: host-pid)
  --idle-exit DURATION        worker: stop after this long without a task (30s, 5m)
  --wait                      run: wait while gc holds the store; gc --yes: wait while runs hold it (instead of exit 3)
  --json                      print events as NDJSON on stdout (plan, run); JSON output (results, runs, compare)
  --format FORMAT             dag: mermaid (default) or dot; results: table (default), csv, json or markdown
  --sort COLUMN               results: order by COLUMN, numbers largest first (a unique last part works: accuracy)
  --compare                   results: paired comparisons of strategies over replicates (t-test, Wilcoxon, Holm)
  --against SERIES            results --compare: only the pairs with SERIES (as the tables name it: random, active-10 margin),
                              each as other − SERIES, Holm-adjusted over those alone
  --per-replicate             results: with replicates, every replicate's row instead of the statistics per cell
  -o, --output FILE           report: the HTML file (default: report.html); FILE-accuracy.svg and .png go next to it
  --cell CELL                 report: the cell whose confusion matrix is drawn, by id, stage or matrix values
                              ("k=10 seeding.strategy=full"); default: the grid cell with the best test accuracy
  --instances                 dag: one node per stage instance instead of per stage
  --yes                       gc: really delete
  --keep-within DURATION      gc: also keep what runs of the given pipelines (any --set) used in this
                              time, from the history (default 30d; 0 keeps only what they reach now)
  --allow-modules DIR         also load local stage modules from DIR (repeatable; see SEEDFLOW_MODULE_PATH):
                              their code runs as soon as a pipeline using them is validated
  --verbose                   show progress and stage logs
  --version                   print the version

Exit codes: 0 ok, 1 a stage failed, 2 invalid pipeline, command line, store file or unreachable queue,
3 store locked (gc and a run at once), 4 the queue was lost during the run, 130 interrupted, 70 internal error.`;

/** Each command's usage and the options it reads, for `seedflow COMMAND --help` and `seedflow help COMMAND`. */
const COMMANDS = {
  validate: { usage: '<pipeline> [--set NAME=VALUE]...', options: ['--set'] },
  plan: { usage: '<pipeline> [--set ...] [--store DIR] [--force STAGE]... [--only STAGE]... [--json]', options: ['--set', '--store', '--force', '--only', '--json'] },
  run: { usage: '<pipeline> [--set ...] [--store DIR] [--jobs N] [--keep-going] [--force STAGE]... [--only STAGE]... [--wait] [--json] [--verbose] [--executor local|bullmq --queue URL]', options: ['--set', '--store', '--jobs', '--keep-going', '--force', '--only', '--wait', '--json', '--verbose', '--executor', '--queue'] },
  dag: { usage: '<pipeline> [--format mermaid|dot] [--instances]', options: ['--set', '--format', '--instances'] },
  schema: { usage: '[STAGE_TYPE]', options: [] },
  gc: { usage: '<pipeline>... [--store DIR] [--keep-within DURATION] [--yes] [--wait]', options: ['--set', '--store', '--keep-within', '--yes', '--wait'] },
  doctor: { usage: '[--store DIR] [--queue URL]', options: ['--store', '--queue'] },
  worker: { usage: '--queue URL --store DIR [--jobs N] [--name NAME] [--idle-exit DURATION]', options: ['--queue', '--store', '--jobs', '--name', '--idle-exit'] },
  results: { usage: '<pipeline> [--format table|csv|json|markdown] [--sort COLUMN] [--compare [--against SERIES]] [--per-replicate] [--set ...] [--store DIR]', options: ['--set', '--store', '--format', '--sort', '--json', '--compare', '--against', '--per-replicate'] },
  report: { usage: '<pipeline> [-o report.html] [--cell CELL] [--set ...] [--store DIR]', options: ['--set', '--store', '-o, --output', '--cell'] },
  runs: { usage: '[pipeline] [--store DIR] [--json]', options: ['--store', '--json'] },
  compare: { usage: 'RUN_A RUN_B [--store DIR] [--json]', options: ['--store', '--json'] },
} as const satisfies Record<string, { usage: string; options: readonly string[] }>;

type CommandName = keyof typeof COMMANDS;

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

/** One command's help: its line of the global help, its usage, and its options' lines. */
function commandHelp(name: CommandName): string {
  const lines = HELP.split('\n');
  const summary = lines.find((l) => l.startsWith(`  ${name} `))?.replace(/^\s*\S+(\s+\S+)*?\s{2,}/, '') ?? '';
  const options: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!COMMANDS[name].options.some((o) => line.startsWith(`  ${o} `))) continue;
    options.push(line);
    // Continuation lines of the same option.
    for (let j = i + 1; j < lines.length && /^ {20,}\S/.test(lines[j] ?? ''); j++) options.push(lines[j] ?? '');
  }
  return [`Usage: seedflow ${name} ${COMMANDS[name].usage}`, '', summary, ...(options.length > 0 ? ['', 'Options:', ...options] : [])].join('\n');
}

const OPTIONS = {
  set: { type: 'string', multiple: true },
  store: { type: 'string' },
  jobs: { type: 'string' },
  'keep-going': { type: 'boolean' },
  force: { type: 'string', multiple: true },
  only: { type: 'string', multiple: true },
  wait: { type: 'boolean' },
  json: { type: 'boolean' },
  format: { type: 'string' },
  instances: { type: 'boolean' },
  yes: { type: 'boolean' },
  'keep-within': { type: 'string' },
  verbose: { type: 'boolean' },
  version: { type: 'boolean' },
  executor: { type: 'string' },
  queue: { type: 'string' },
  name: { type: 'string' },
  'idle-exit': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  sort: { type: 'string' },
  output: { type: 'string', short: 'o' },
  cell: { type: 'string' },
  'allow-modules': { type: 'string', multiple: true },
  compare: { type: 'boolean' },
  'per-replicate': { type: 'boolean' },
  against: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

class UsageError extends Error {}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}
function err(text: string): void {
  process.stderr.write(`${text}\n`);
}

function onePipeline(positionals: readonly string[], command: string): string {
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) throw new UsageError(`seedflow ${command} takes one pipeline file`);
  return file;
}

function jobsOf(values: Values): number {
  if (values.jobs === undefined) return availableParallelism();
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs must be a whole number of at least 1, got "${values.jobs}"`);
  return jobs;
}

function checkStages(plan: Plan, names: readonly string[], flag: string): void {
  for (const name of names) {
    if (!plan.instances.some((i) => selects(name, i))) {
      throw new UsageError(`${flag} ${name}: no stage "${name}" and no instance matches it in ${plan.name} (stages: ${plan.stages.join(', ')}; an instance is STAGE[k=10], or matrix values like k=10)`);
    }
  }
}

async function storeFacts(store: Store, plan: Plan): Promise<StoreFacts> {
  const artifacts = new Map(await Promise.all(plan.instances.map(async (i) => [i.key, await store.state(i.key)] as const)));
  const { lastFailures } = await fromHistory(store.root, plan.name);
  return { artifacts, previous: await store.readIndex(plan.name), failed: lastFailures };
}

/**
 * What the history says of a pipeline's earlier runs: the instances that failed in its latest
 * run, and each stage's typical duration. Nothing when there is no history or it cannot be read
 * (`runs` reports that; planning does not depend on it).
 */
async function fromHistory(root: string, pipeline: string): Promise<{ readonly lastFailures: ReadonlyMap<string, { readonly outcome: string; readonly key: string; readonly error: string; readonly run: string }>; readonly durations: ReadonlyMap<string, number> }> {
  try {
    const { RunHistory } = await import('../history/history.js');
    const history = RunHistory.open(root, { create: false });
    if (history === null) return { lastFailures: new Map(), durations: new Map() };
    try {
      return { lastFailures: history.lastFailures(pipeline), durations: history.typicalDurations(pipeline) };
    } finally {
      history.close();
    }
  } catch {
    return { lastFailures: new Map(), durations: new Map() };
  }
}

function runId(): string {
  return `${new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}-${process.pid}`;
}

async function cmdValidate(positionals: readonly string[], values: Values): Promise<number> {
  const file = onePipeline(positionals, 'validate');
  const { expansion } = await checkPipeline(file, values.set ?? [], moduleRoots(values));
  out(`${file}: valid (${expansion.stages.length} stages, ${expansion.instances.length} instances)`);
  return EXIT.ok;
}

async function cmdPlan(positionals: readonly string[], values: Values): Promise<number> {
  const file = onePipeline(positionals, 'plan');
  const location = locateStore(values, 'read', file);
  const store = new Store(location.root, { readOnly: true });
  const { plan } = await preparePlan({ file, sets: values.set ?? [], store, allowDownload: false, log: (_, m) => err(m), moduleRoots: moduleRoots(values) });
  err(describeStore(location));
  checkStages(plan, values.force ?? [], '--force');
  checkStages(plan, values.only ?? [], '--only');
  const states = decide(plan, await storeFacts(store, plan), { force: values.force ?? [], only: values.only ?? [] });
  if (values.json) {
    for (const i of plan.instances) {
      const s = states.get(i.id);
      const event: RunEvent = { event: 'instance', time: Date.now(), id: i.id, stage: i.stage, matrix: i.matrix, key: i.key, status: s?.status ?? 'run', reasons: s?.status === 'cached' || s === undefined ? [] : s.reasons };
      out(JSON.stringify(event));
    }
  } else {
    out(formatPlan(plan, states));
  }
  return EXIT.ok;
}

async function cmdRun(positionals: readonly string[], values: Values): Promise<number> {
  const started = Date.now();
  const file = onePipeline(positionals, 'run');
  const jobs = jobsOf(values);
  const location = locateStore(values, 'write', file);
  const root = location.root;
  const store = new Store(root);
  const executor = values.executor ?? 'local';
  if (executor !== 'local' && executor !== 'bullmq') throw new UsageError(`--executor must be local or bullmq, got "${executor}"`);
  const queueUrl = queueUrlOf(values.queue);
  if (executor === 'bullmq' && queueUrl === undefined) throw new UsageError('--executor bullmq needs --queue redis://HOST:PORT (or SEEDFLOW_QUEUE)');
  const { LocalRunner } = await import('../executor/runner.js');
  // Starts no process until asked: a plan that fails to load leaves nothing to close.
  const local = new LocalRunner(jobs, store);
  const { pipeline, plan } = await preparePlan({ file, sets: values.set ?? [], store, allowDownload: true, log: (_, m) => err(m), compute: () => local.compute(), moduleRoots: moduleRoots(values) });
  checkStages(plan, values.force ?? [], '--force');
  checkStages(plan, values.only ?? [], '--only');
  const queued = executor === 'bullmq' && queueUrl !== undefined ? await (await import('../executor/queue-runner.js')).QueueRunner.open(queueUrl, store) : undefined;
  const runner: TaskRunner = queued ?? local;
  // Shared: other runs work on the store at once (each instance is claimed by the one computing it); only gc excludes runs.
  const release = await store.hold(`seedflow run ${file}`, {
    wait: values.wait === true,
    onWait: (holder) => err(`seedflow: waiting for process ${holder.pid} ("${holder.command}") to release the store ${root}`),
  }).catch(async (error: unknown) => {
    await queued?.close();
    throw error;
  });
  const id = runId();
  // On a terminal the live view draws progress and prints the log lines itself.
  const live = values.json !== true && process.stderr.isTTY === true && process.env['TERM'] !== 'dumb'
    ? new (await import('./progress.js')).LiveProgress(process.stderr, { priors: (await fromHistory(root, plan.name)).durations })
    : undefined;
  // With --json, stdout carries the events and stderr the readable lines, as the README says.
  const log = await createLogger({ console: live === undefined, verbose: values.verbose === true, logDir: await store.logDir(), runId: id });
  // Said once the store is known to be usable, so a store problem is the first line.
  err(describeStore(location));
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts === 1) {
      const message = 'seedflow: stopping; running stages are asked to stop (press Ctrl-C again to quit at once)';
      if (live) live.print(message);
      else err(message);
      controller.abort();
    } else {
      void release().finally(() => process.exit(EXIT.interrupted));
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Opened after emit is defined, since opening may warn through it.
  let recorder: import('../history/recorder.js').HistoryRecorder | null = null;
  // A stage that failed because the disk refused a write: the run then ends with exit 2, as any full disk does.
  let diskFull: string | undefined;
  const emit = (event: RunEvent): void => {
    if (event.event === 'stage-end' && event.failure?.reason === 'disk') diskFull ??= describeFailure(event.failure).message;
    if (values.json) out(JSON.stringify(event));
    const line = describeEvent(event);
    log.logger.log(line?.level ?? 'debug', line?.text ?? event.event, event);
    live?.event(event, line, values.verbose === true);
    recorder?.record(event);
  };
  recorder = (await import('../history/recorder.js')).HistoryRecorder.open(store, {
    id, pipeline: plan.name, file: resolve(file), fileParams: pipeline.spec.params, sets: values.set ?? [], jobs, started,
    provenance: (await import('../history/provenance.js')).gatherProvenance(file, SEEDFLOW_VERSION),
    options: { force: values.force ?? [], only: values.only ?? [], keepGoing: values['keep-going'] === true },
  }, (message) => emit({ event: 'warning', time: Date.now(), message: `seedflow: ${message}` }));
  const { schedule } = await import('../executor/scheduler.js');
  try {
    const facts = await storeFacts(store, plan);
    const states = decide(plan, facts, { force: values.force ?? [], only: values.only ?? [] });
    for (const i of plan.instances) {
      const s = states.get(i.id);
      emit({ event: 'instance', time: Date.now(), id: i.id, stage: i.stage, matrix: i.matrix, key: i.key, status: s?.status ?? 'run', reasons: s?.status === 'cached' || s === undefined ? [] : s.reasons });
    }
    const toRun = [...states.values()].filter((s) => s.status === 'run').length;
    const heavy = plan.instances.filter((i) => i.type.heavy && states.get(i.id)?.status === 'run');
    runner.prepare?.({ heavy: heavy.length, numeric: heavy.some((i) => i.type.numeric === true) });
    emit({ event: 'run-start', time: Date.now(), run: id, pipeline: plan.name, jobs, backend: plan.backend, store: root, instances: plan.instances.length, selected: [...states.values()].filter((s) => s.status !== 'not-selected').length, toRun });
    const result = await schedule(plan, states, store, runner, emit, { jobs, keepGoing: values['keep-going'] === true, signal: controller.signal, found: facts.artifacts, command: `seedflow run ${file}` });
    const { publishOutputs } = await import('../executor/publish.js');
    for (const p of await publishOutputs(plan, pipeline, store)) emit({ event: 'published', time: Date.now(), ...p });
    emit({ event: 'run-end', time: Date.now(), run: id, status: result.status, durationMs: Date.now() - started, counts: result.counts });
    if (queued?.lostReason != null) {
      err(`seedflow: ${queued.lostReason}; the run stopped (published artifacts are whole)\n  hint: once Redis is back, run again: it resumes from the cache`);
      return EXIT.queueLost;
    }
    if (result.status === 'failed' && diskFull !== undefined) {
      err(`seedflow: ${diskFull}; the run stopped (published artifacts are whole)\n  hint: free some space (or use --store on another disk) and run again: completed stages are cached`);
      return EXIT.invalid;
    }
    return result.status === 'success' ? EXIT.ok : result.status === 'interrupted' ? EXIT.interrupted : EXIT.stageFailed;
  } finally {
    live?.close();
    recorder?.close();
    await runner.close();
    await log.close();
    await release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function cmdDag(positionals: readonly string[], values: Values): Promise<number> {
  const { pipeline, expansion } = await checkPipeline(onePipeline(positionals, 'dag'), values.set ?? [], moduleRoots(values));
  const format = values.format ?? 'mermaid';
  if (format !== 'mermaid' && format !== 'dot') throw new UsageError(`--format must be mermaid or dot, got "${format}"`);
  const nodes: { id: string; label: string }[] = [];
  const edges: [string, string][] = [];
  if (values.instances) {
    expansion.instances.forEach((i, n) => nodes.push({ id: `n${n}`, label: i.id }));
    const ids = new Map(expansion.instances.map((i, n) => [i.id, `n${n}`]));
    const graph = new InstanceGraph(expansion.instances);
    for (const i of expansion.instances) for (const need of graph.needsOf(i.id)) edges.push([ids.get(need) ?? '', ids.get(i.id) ?? '']);
  } else {
    for (const id of expansion.stages) {
      const axes = expansion.axes[id] ?? [];
      const count = expansion.instances.filter((i) => i.stage === id).length;
      const rounds = expansion.rounds[id];
      nodes.push({ id, label: `${id}: ${pipeline.spec.stages[id]?.uses ?? ''}${axes.length ? ` × ${axes.join(', ')} (${count})` : ''}${rounds !== undefined ? `, ${rounds} round${rounds === 1 ? '' : 's'}` : ''}` });
      for (const need of pipeline.spec.stages[id]?.needs ?? []) edges.push([need, id]);
      // Each round reads the one before it.
      if (rounds !== undefined) edges.push([id, id]);
    }
  }
  const quote = (s: string): string => s.replace(/"/g, "'");
  if (format === 'mermaid') {
    out(['flowchart LR', ...nodes.map((n) => `  ${n.id.replace(/[^A-Za-z0-9_]/g, '_')}["${quote(n.label)}"]`), ...edges.map(([a, b]) => `  ${a.replace(/[^A-Za-z0-9_]/g, '_')} --> ${b.replace(/[^A-Za-z0-9_]/g, '_')}`)].join('\n'));
  } else {
    out([`digraph "${quote(pipeline.spec.name)}" {`, '  rankdir=LR;', '  node [shape=box];', ...nodes.map((n) => `  "${quote(n.id)}" [label="${quote(n.label)}"];`), ...edges.map(([a, b]) => `  "${quote(a)}" -> "${quote(b)}";`), '}'].join('\n'));
  }
  return EXIT.ok;
}

async function cmdSchema(positionals: readonly string[]): Promise<number> {
  const name = positionals[0];
  if (name === undefined) {
    out(JSON.stringify(await editorSchema(), null, 2));
    return EXIT.ok;
  }
  const schema = await stageSchema(name);
  if (schema === undefined) throw new UsageError(`unknown stage type "${name}"`);
  out(JSON.stringify(schema, null, 2));
  return EXIT.ok;
}

async function cmdGc(positionals: readonly string[], values: Values): Promise<number> {
  if (positionals.length === 0) throw new UsageError('seedflow gc takes the pipeline files whose artifacts to keep');
  const { doomedArtifacts, doomedRow, formatBytes, recentKeys } = await import('./gc.js');
  const within = parseDuration(values['keep-within'] ?? '30d', '--keep-within');
  const store = new Store(storeRoot(values, values.yes === true ? 'write' : 'read', positionals[0]), { readOnly: values.yes !== true });
  const keep = new Set<string>();
  for (const file of positionals) {
    const { plan } = await preparePlan({ file, sets: values.set ?? [], store, allowDownload: false, log: (_, m) => err(m), moduleRoots: moduleRoots(values) });
    for (const i of plan.instances) keep.add(i.key);
  }
  const now = Date.now();
  const recent = recentKeys(store.root, positionals, now - within, (m) => err(`seedflow: warning: ${m}`));
  for (const key of recent.keys) keep.add(key);
  // Exclusive: no run may be reading or publishing what gc removes.
  const release = values.yes ? await store.lock(`seedflow gc`, {
    wait: values.wait === true,
    onWait: (holder) => err(`seedflow: waiting for process ${holder.pid} ("${holder.command}") to finish with the store ${store.root}`),
  }) : async () => {};
  try {
    const doomed = await doomedArtifacts(store, keep, now);
    const size = formatBytes(doomed.reduce((sum, d) => sum + d.bytes, 0));
    const kept = `kept: what ${positionals.length === 1 ? 'the pipeline reaches' : 'the pipelines reach'} now, and what ${recent.runs} of ${positionals.length === 1 ? 'its' : 'their'} runs used in the last ${values['keep-within'] ?? '30d'} (--keep-within)`;
    if (doomed.length > 0) out(table([['KEY', 'INSTANCE', 'SIZE', 'MADE'], ...doomed.map(doomedRow)]));
    if (!values.yes) {
      out(`${doomed.length} artifacts (${size}) would be removed; ${kept}; run again with --yes to remove them`);
      return EXIT.ok;
    }
    for (const d of doomed) await store.remove(d.key);
    out(`removed ${doomed.length} artifacts (${size}); ${kept}`);
    return EXIT.ok;
  } finally {
    await release();
  }
}

async function cmdDoctor(values: Values): Promise<number> {
  const { doctorReport } = await import('./doctor.js');
  const rows = await doctorReport(storeRoot(values, 'read'));
  const url = queueUrlOf(values.queue);
  if (url !== undefined) rows.push(...await queueRows(url));
  out(table(rows.map(([k, v]) => [k, v])));
  return EXIT.ok;
}

/**
 * A full or read-only disk or a permission problem met while reading or
 * writing files (the store, a log, a report): the path and what is wrong,
 * not a bug's stack.
 */
function fileSystemProblem(error: unknown): string | undefined {
  const e = error as NodeJS.ErrnoException;
  if (!(error instanceof Error) || !['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE'].includes(e.code ?? '')) return undefined;
  return `${e.path ?? 'a store file'}: ${describeFsError(error)}${e.syscall !== undefined ? ` (${e.syscall})` : ''}`;
}

async function cmdWorker(positionals: readonly string[], values: Values): Promise<number> {
  if (positionals.length > 0) throw new UsageError('seedflow worker takes no positional arguments');
  const { cmdWorker: run } = await import('./queue.js');
  return run({
    ...(values.queue !== undefined ? { queue: values.queue } : {}), ...(values.store !== undefined ? { store: values.store } : {}),
    ...(values.jobs !== undefined ? { jobs: values.jobs } : {}), ...(values.name !== undefined ? { name: values.name } : {}),
    ...(values['idle-exit'] !== undefined ? { idleExit: values['idle-exit'] } : {}),
  }, err);
}

/** Runs the CLI and returns its exit code. Only this module prints and decides exit codes. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    err(`seedflow: ${error instanceof Error ? error.message : String(error)}\nRun "seedflow help" for usage.`);
    return EXIT.invalid;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.version) {
    const { createRequire } = await import('node:module');
    out((createRequire(import.meta.url)('../../../package.json') as { version: string }).version);
    return EXIT.ok;
  }
  const about = command === 'help' ? rest[0] : values.help ? command : undefined;
  if (about !== undefined && isCommand(about)) {
    out(commandHelp(about));
    return EXIT.ok;
  }
  if (values.help || command === undefined || command === 'help') {
    out(HELP);
    return command === undefined && !values.help ? EXIT.invalid : EXIT.ok;
  }
  try {
    switch (command) {
      case 'validate': return await cmdValidate(rest, values);
      case 'plan': return await cmdPlan(rest, values);
      case 'run': return await cmdRun(rest, values);
      case 'dag': return await cmdDag(rest, values);
      case 'schema': return await cmdSchema(rest);
      case 'gc': return await cmdGc(rest, values);
      case 'doctor': return await cmdDoctor(values);
      case 'worker': return await cmdWorker(rest, values);
      case 'results': return await (await import('./results.js')).cmdResults(rest, values);
      case 'report': return await (await import('./results.js')).cmdReport(rest, values);
      case 'runs': return await (await import('./results.js')).cmdRuns(rest, values);
      case 'compare': return await (await import('./results.js')).cmdCompare(rest, values);
      default:
        throw new UsageError(`unknown command "${command}"${((hint) => (hint === undefined ? '' : ` (${hint})`))(suggest(command, Object.keys(COMMANDS)))}`);
    }
  } catch (error) {
    if (error instanceof DiagnosticError) {
      err(formatDiagnostics(error.diagnostics, values.set ?? []));
      return EXIT.invalid;
    }
    if (error instanceof UsageError || error instanceof FlagError) {
      err(`seedflow: ${error.message}\nRun "seedflow help" for usage.`);
      return EXIT.invalid;
    }
    if (error instanceof StoreFileError) {
      err(`seedflow: ${error.message}${error.hint !== undefined ? `\n  hint: ${error.hint}` : ''}`);
      return EXIT.invalid;
    }
    if (error instanceof QueueUsageError) {
      err(`seedflow: ${error.message}\nRun "seedflow help" for usage.`);
      return EXIT.invalid;
    }
    if (error instanceof QueueError) {
      err(`seedflow: ${error.message}${error.hint !== undefined ? `\n  hint: ${error.hint}` : ''}`);
      return EXIT.invalid;
    }
    if (error instanceof StoreLockedError) {
      err(`seedflow: ${error.message}\n  hint: wait for it to finish, or pass --wait; the lock is ${error.lockFile}`);
      return EXIT.locked;
    }
    const space = fileSystemProblem(error);
    if (space !== undefined) {
      err(`seedflow: ${space}\n  hint: free space or fix the permissions, then run again; what was published stays sound`);
      return EXIT.invalid;
    }
    err(`seedflow: internal error, please report it with this output:\n${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    return EXIT.internal;
  }
}

// A reader that stops early (`seedflow plan ... | head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

