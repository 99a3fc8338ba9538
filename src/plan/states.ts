import { explainChange } from '../cache/key.js';
import type { ArtifactState, IndexEntry } from '../cache/store.js';
import { InstanceGraph } from './instance-graph.js';
import { formatMatrix } from './matrix.js';
import type { KeyedInstance, Plan } from './types.js';

/** What `plan` says of an instance: cached, will run (and why), or left out by --only. */
export type InstanceState =
  | { readonly status: 'cached' }
  | { readonly status: 'run'; readonly reasons: readonly string[] }
  | { readonly status: 'not-selected'; readonly reasons: readonly string[] };

/** The store's facts about a plan, gathered by the caller. */
export interface StoreFacts {
  readonly artifacts: ReadonlyMap<string, ArtifactState>;
  readonly previous: ReadonlyMap<string, IndexEntry>;
  /** Instances that failed, were skipped or interrupted in the pipeline's latest run, by instance id, with the key they had then (from the history). */
  readonly failed?: ReadonlyMap<string, { readonly outcome: string; readonly key: string; readonly error: string; readonly run: string }>;
}

/** Selections from the command line. */
export interface Selection {
  /** Stages or instances to recompute (see `selects`), with everything downstream of them. */
  readonly force: readonly string[];
  /** Stages or instances to run (see `selects`), with what they need; the rest is left out. Empty means all. */
  readonly only: readonly string[];
}

/**
 * Whether a `--only` / `--force` selector names an instance: a stage id
 * (`cluster`), an instance id (`cluster[k=30]`), a stage with some of its
 * matrix values (`seed[k=30]`), or matrix values alone (`k=30`,
 * `"k=30 seeding.strategy=full"`), which select every instance that has them.
 */
export function selects(selector: string, instance: Pick<KeyedInstance, 'id' | 'stage' | 'matrix'>): boolean {
  const bracket = /^([^[\]=\s]+)\[(.*)\]$/.exec(selector.trim());
  const stage = bracket !== null ? bracket[1] : selector.includes('=') ? undefined : selector.trim();
  const values = bracket !== null ? bracket[2] ?? '' : stage === undefined ? selector : '';
  if (stage !== undefined && stage !== instance.stage) return false;
  const wanted = values.split(/\s+/).filter((t) => t !== '');
  if (wanted.length === 0) return true;
  const has = new Set(formatMatrix(instance.matrix).split(' '));
  return wanted.every((t) => has.has(t));
}

/**
 * Decides what must run and why. Pure: the plan and the store's facts in,
 * one state per instance out. Reasons are for people: "new", "param epochs
 * changed (20 → 5)", "input cluster[k=10] changed", "forced", "artifact damaged".
 */
export function decide(plan: Plan, facts: StoreFacts, selection: Selection): Map<string, InstanceState> {
  const graph = new InstanceGraph(plan.instances);
  const owner = new Map(plan.instances.map((i) => [i.key, i.id]));
  const selected = selection.only.length === 0
    ? new Set(plan.instances.map((i) => i.id))
    : graph.upstream(plan.instances.filter((i) => selection.only.some((s) => selects(s, i))).map((i) => i.id));
  // What is forced is an artifact, not an id: a twin (another instance of the same key) is rebuilt with it, or its cells downstream would keep the old one's work.
  const forcedKeys = new Set(plan.instances.filter((i) => selected.has(i.id) && selection.force.some((s) => selects(s, i))).map((i) => i.key));
  const forcedHere = (i: KeyedInstance): boolean => forcedKeys.has(i.key);
  const forced = graph.downstream(plan.instances.filter((i) => forcedHere(i) && selected.has(i.id)).map((i) => i.id));
  const states = new Map<string, InstanceState>();
  // The forced stage each forced instance traces back to, through its first forced need.
  const forcedBy = new Map<string, string>();
  for (const instance of plan.instances) {
    if (!selected.has(instance.id)) {
      states.set(instance.id, { status: 'not-selected', reasons: ['not selected by --only'] });
      continue;
    }
    if (forcedHere(instance)) {
      forcedBy.set(instance.id, instance.stage);
      states.set(instance.id, { status: 'run', reasons: ['forced'] });
      continue;
    }
    if (forced.has(instance.id)) {
      const by = graph.needsOf(instance.id).map((id) => forcedBy.get(id)).find((s) => s !== undefined) ?? '';
      forcedBy.set(instance.id, by);
      states.set(instance.id, { status: 'run', reasons: [`forced upstream (${by})`] });
      continue;
    }
    const artifact = facts.artifacts.get(instance.key) ?? { state: 'missing' };
    if (artifact.state === 'ok') {
      states.set(instance.id, { status: 'cached' });
    } else if (artifact.state === 'damaged') {
      states.set(instance.id, { status: 'run', reasons: [`artifact damaged (${artifact.reason})`] });
    } else {
      const failed = facts.failed?.get(instance.id);
      const reasons = failed !== undefined && failed.key === instance.key
        ? [`${failed.outcome} in the last run, ${failed.run}${failed.error === '' ? '' : `: ${failed.error}`}`]
        : whyMissing(instance, facts.previous.get(instance.id), owner);
      states.set(instance.id, { status: 'run', reasons });
    }
  }
  return states;
}

function whyMissing(instance: KeyedInstance, previous: IndexEntry | undefined, owner: ReadonlyMap<string, string>): string[] {
  if (previous === undefined) return ['new'];
  if (previous.key === instance.key) return ['artifact missing from the store'];
  const reasons = explainChange(previous.record, instance.record, (key) => owner.get(key));
  return reasons.length > 0 ? reasons : ['key changed'];
}
