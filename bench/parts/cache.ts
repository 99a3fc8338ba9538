/** The cache part: a fully cached re-run against `seedflow validate` on the same file. */
import { join } from 'node:path';
import { TARGETS, median, say, type BenchContext, type PartResult } from '../context.js';
import { runPipeline, timeValidate } from '../cli-runs.js';
import { judge, seconds } from '../report.js';

/** Times a fully cached re-run against `validate`, each a median of several runs. */
export async function benchCache(ctx: BenchContext): Promise<PartResult> {
  const { options } = ctx;
  let store = ctx.filledStore;
  if (store === undefined) {
    store = join(ctx.dir, 'store-cache');
    say('  filling a store for the cached re-run…');
    await runPipeline(options.pipeline, store, 2, options.sets);
  }
  const cached: number[] = [];
  const validate: number[] = [];
  // Interleaved, so that a change in the machine's load hits both alike.
  for (let i = 0; i < options.repeats; i++) {
    say(`  cached re-run and validate, ${i + 1}/${options.repeats}…`);
    const run = await runPipeline(options.pipeline, store, 2, options.sets);
    if (run.ran !== 0) throw new Error(`the re-run was meant to be fully cached but ran ${run.ran} stages`);
    cached.push(run.wallS);
    validate.push(await timeValidate(options.pipeline, options.sets));
  }
  const ours = median(cached);
  const against = median(validate);
  const ratio = ours / against;
  return {
    section: 'cache',
    rows: [{
      what: 'fully cached re-run against seedflow validate (median wall)',
      ours: seconds(ours),
      against: `${seconds(against)} (validate)`,
      ratio,
      target: `≤ ${TARGETS.cache}x`,
      verdict: judge(ratio, TARGETS.cache),
      memory: '',
    }],
    notes: [`${options.repeats} runs of each, interleaved; each is a new Node process. Cached runs: ${cached.map(seconds).join(', ')}; validate: ${validate.map(seconds).join(', ')}.`],
  };
}

