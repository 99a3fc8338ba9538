/** The pipeline part: the quick pipeline end to end with --jobs 1 and --jobs 2, and a worker's peak memory. */
import { join } from 'node:path';
import { ROOT, TARGETS, say, type BenchContext, type PartResult } from '../context.js';
import { runPipeline, type PipelineRun } from '../cli-runs.js';
import { judge, megabytes, seconds, type Row } from '../report.js';
import { parallelCapacity, trainingCapacity } from '../speed.js';

/** One run in a line: wall time, how many stages ran at once for how long, and where the stage time went. */
function stageNote(label: string, run: PipelineRun): string {
  const stages = Object.entries(run.stageSeconds).sort((a, b) => b[1] - a[1]).map(([stage, s]) => `${stage} ${seconds(s)}`);
  const busy = run.busy.map((s, c) => `${c} for ${seconds(s)}`).join(', ');
  return `${label}: ${seconds(run.wallS)} wall, ${run.ran} stages ran, ${seconds(run.startupS)} from start to the first event; stages running at once: ${busy}; ` +
    `stage time by stage (summed over instances): ${stages.join(', ')}.`;
}

/** Runs the pipeline into fresh stores with --jobs 1 and --jobs 2 and reads the workers' peak memory. */
export async function benchPipeline(ctx: BenchContext): Promise<PartResult> {
  const { options } = ctx;
  say('  parallel capacity of the machine…');
  const calibration = await parallelCapacity(options.quick ? 10 : 40, options.quick ? 0.5 : 3);
  say('  parallel capacity for training…');
  const training = await trainingCapacity(Math.min(options.rows, 55000), options.quick ? 2 : 3);
  const all: PipelineRun[] = [];
  const best: PipelineRun[] = [];
  for (const jobs of [1, 2]) {
    const tries: PipelineRun[] = [];
    for (let attempt = 1; attempt <= options.pipelineRepeats; attempt++) {
      const store = join(ctx.dir, `store-jobs-${jobs}-${attempt}`);
      say(`  pipeline --jobs ${jobs}, run ${attempt}/${options.pipelineRepeats}…`);
      tries.push(await runPipeline(options.pipeline, store, jobs, options.sets));
      if (jobs === 2) ctx.filledStore = store;
    }
    all.push(...tries);
    best.push(tries.reduce((a, b) => (b.wallS < a.wallS ? b : a)));
  }
  const runs = all;
  const [one, two] = best as [PipelineRun, PipelineRun];
  const ratio = two.wallS / one.wallS;
  const peaks = runs.map((r) => r.peakWorkerRssMb).filter((p): p is number => p !== null);
  const peak = peaks.length > 0 ? Math.max(...peaks) : null;
  const peakRun = runs.find((r) => r.peakWorkerRssMb === peak);
  const name = options.pipeline.startsWith(ROOT) ? options.pipeline.slice(ROOT.length) : options.pipeline;
  const rows: Row[] = [
    {
      what: `${name} end to end, --jobs 2 against --jobs 1 (wall)`,
      ours: seconds(two.wallS),
      against: `${seconds(one.wallS)} (--jobs 1)`,
      ratio,
      target: `≤ ${TARGETS.jobs}x`,
      verdict: judge(ratio, TARGETS.jobs),
      memory: '',
    },
    {
      what: 'peak memory of one worker (max peakRssMb of stage-end events)',
      ours: megabytes(peak),
      against: `${megabytes(TARGETS.workerMb)} (1.5 GB)`,
      ratio: peak === null ? null : peak / TARGETS.workerMb,
      target: '≤ 1.00x',
      verdict: judge(peak === null ? null : peak / TARGETS.workerMb, 1),
      memory: '',
    },
  ];
  const notes = [
    `Fresh temporary stores for each run; the faster of ${options.pipelineRepeats} run(s) per --jobs value counts${options.sets.length > 0 ? `, with ${options.sets.map((s) => `--set ${s}`).join(' ')}` : ''}.`,
    `Parallel capacity: a fixed batch of matrix products took ${seconds(calibration.alone)} in one process alone and ${seconds(calibration.together)} in each of two processes at once, ` +
      `so two processes did ${calibration.capacity.toFixed(2)}x the work of one. ` +
      `Training (the grid's main work): the best MLP epoch took ${seconds(training.alone)} in one process alone and ${seconds(training.together)} in the slower of two at once, ` +
      `${training.capacity.toFixed(2)}x the work of one; a grid of such stages, perfectly scheduled and with no serial part, could reach about ${(1 / training.capacity).toFixed(2)}x of --jobs 1.`,
    stageNote('--jobs 1 (fastest)', one),
    stageNote('--jobs 2 (fastest)', two),
    ...(peakRun?.peakStage ? [`The peak was reported after stage ${peakRun.peakStage} (a worker's peak covers every stage it ran so far).`] : []),
  ];
  return { section: 'pipeline', rows, notes };
}

