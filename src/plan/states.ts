import { explainChange } from '../cache/key.js';
import type { ArtifactState, IndexEntry } from '../cache/store.js';
import { InstanceGraph } from './instance-graph.js';
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
}

/** Selections from the command line. */
export interface Selection {
  /** Stage ids to recompute, with everything downstream of them. */
  readonly force: readonly string[];
  /** Stage ids to run, with what they need; the rest is left out. Empty means all. */
  readonly only: readonly string[];
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
    : graph.upstream(plan.instances.filter((i) => selection.only.includes(i.stage)).map((i) => i.id));
  const forced = graph.downstream(plan.instances.filter((i) => selection.force.includes(i.stage) && selected.has(i.id)).map((i) => i.id));
  const states = new Map<string, InstanceState>();
  // The forced stage each forced instance traces back to, through its first forced need.
  const forcedBy = new Map<string, string>();
  for (const instance of plan.instances) {
    if (!selected.has(instance.id)) {
      states.set(instance.id, { status: 'not-selected', reasons: ['not selected by --only'] });
      continue;
    }
    if (selection.force.includes(instance.stage)) {
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
      states.set(instance.id, { status: 'run', reasons: whyMissing(instance, facts.previous.get(instance.id), owner) });
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
