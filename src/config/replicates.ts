import { parse } from 'yaml';
import type { Diagnostic } from '../errors/diagnostic.js';
import { COMMAND_LINE } from './overrides.js';
import type { LoadedPipeline } from './spec.js';

/** The most replicates a pipeline may ask for: a guard against a typo that would plan millions of instances. */
export const MAX_REPLICATES = 1000;

/** `replicates:` as written: a count (seeds 1 to N) or the seeds themselves. */
export type ReplicatesValue = number | { readonly seeds: readonly number[] };

/** The JSON Schema of `replicates:`, shared by the pipeline schema and `--set replicates=...`. */
export const REPLICATES_SCHEMA = {
  description: 'Repeat every seed-dependent stage: a count N (seeds 1 to N) or { seeds: [...] }. Stages read the seed as ${{ replicate.seed }}; those that do not (nor their needs) run once, shared by every replicate. --set replicates=N changes it.',
  oneOf: [
    { type: 'integer', minimum: 1, maximum: MAX_REPLICATES, description: 'How many replicates: seeds 1 to N, so raising N keeps the earlier replicates.' },
    {
      type: 'object',
      required: ['seeds'],
      additionalProperties: false,
      properties: {
        seeds: { type: 'array', minItems: 1, maxItems: MAX_REPLICATES, uniqueItems: true, items: { type: 'integer', minimum: 0 }, description: 'The replicates\' seeds.' },
      },
    },
  ],
} as const;

/** The seeds a checked `replicates:` value stands for. */
export function replicateSeeds(value: ReplicatesValue): number[] {
  return typeof value === 'number' ? Array.from({ length: value }, (_, i) => i + 1) : [...value.seeds];
}

function isSeedList(value: unknown): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.length <= MAX_REPLICATES
    && value.every((v) => Number.isSafeInteger(v) && (v as number) >= 0) && new Set(value).size === value.length;
}

/**
 * Takes `--set replicates=N` (or `=[seed, ...]`) out of the overrides and
 * applies it to the pipeline; the other overrides are params, left as they are.
 */
export function applyReplicatesOverride(
  pipeline: LoadedPipeline,
  sets: readonly string[],
): { pipeline: LoadedPipeline; sets: string[]; diagnostics: Diagnostic[] } {
  const rest: string[] = [];
  const diagnostics: Diagnostic[] = [];
  let seeds: number[] | undefined;
  for (const set of sets) {
    if (!set.startsWith('replicates=')) {
      rest.push(set);
      continue;
    }
    const text = set.slice('replicates='.length);
    let value: unknown;
    try {
      value = parse(text);
    } catch {
      value = undefined;
    }
    if (Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= MAX_REPLICATES) seeds = replicateSeeds(value as number);
    else if (isSeedList(value)) seeds = value;
    else {
      diagnostics.push({
        file: COMMAND_LINE, line: 1, column: 'replicates='.length + 1, length: Math.max(1, text.length), severity: 'error',
        message: `--set ${set}: replicates must be a count from 1 to ${MAX_REPLICATES} or a list of distinct seeds (integers ≥ 0)`,
        hint: 'for example --set replicates=20 or --set replicates=[1,2,3]',
      });
    }
  }
  if (seeds === undefined) return { pipeline, sets: rest, diagnostics };
  return { pipeline: { ...pipeline, spec: { ...pipeline.spec, replicates: seeds } }, sets: rest, diagnostics };
}
