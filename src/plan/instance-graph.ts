/** What the graph needs of a node: an id, its needs (ids by need name), whether its type gathers. */
export interface GraphNode {
  readonly id: string;
  readonly needs: Readonly<Record<string, readonly string[]>>;
  readonly type: { readonly gather: boolean };
}

/**
 * The graph of stage instances: who needs whom, walks up and down it, and
 * the scheduler's priority. Pure and built once per plan; the stage-level
 * graph (topological order, cycles) is `graph.ts`, which runs before any
 * instance exists.
 */
export class InstanceGraph<N extends GraphNode> {
  private readonly byId: ReadonlyMap<string, N>;
  private readonly order: readonly N[];
  private readonly needLists = new Map<string, readonly string[]>();
  private readonly dependentLists = new Map<string, N[]>();

  /** @param instances every instance, dependencies first (as `Plan.instances` are). */
  constructor(instances: readonly N[]) {
    this.order = instances;
    this.byId = new Map(instances.map((i) => [i.id, i]));
    for (const instance of instances) {
      const needs = [...new Set(Object.values(instance.needs).flat())];
      this.needLists.set(instance.id, needs);
      for (const id of needs) {
        const list = this.dependentLists.get(id);
        if (list === undefined) this.dependentLists.set(id, [instance]);
        else list.push(instance);
      }
    }
  }

  /** The instance with this id. */
  node(id: string): N | undefined {
    return this.byId.get(id);
  }

  /** The ids it needs, flattened over its need names in order, each once. */
  needsOf(id: string): readonly string[] {
    return this.needLists.get(id) ?? [];
  }

  /** The instances that need it, in plan order. */
  dependents(id: string): readonly N[] {
    return this.dependentLists.get(id) ?? [];
  }

  /** The ids and everything they need, transitively; breadth-first, so nearer ids come first in the set's order. */
  upstream(ids: Iterable<string>): Set<string> {
    return this.closure(ids, (id) => this.needsOf(id));
  }

  /** The ids and everything that needs them, transitively; breadth-first, as `upstream`. */
  downstream(ids: Iterable<string>): Set<string> {
    return this.closure(ids, (id) => this.dependents(id).map((d) => d.id));
  }

  /**
   * The scheduler's order among ready instances, higher first. One that
   * completes a cell (only gathering stages need it, or none) gets
   * `Number.MAX_SAFE_INTEGER`, so results arrive during a long grid; any
   * other gets the length of the longest chain of stages after it (itself
   * included), so work that gates much else starts early.
   */
  priority(): ReadonlyMap<string, number> {
    const chain = new Map<string, number>();
    const priority = new Map<string, number>();
    // Instances are in dependency order, so walking them backwards meets every dependent first.
    for (const instance of [...this.order].reverse()) {
      const after = this.dependents(instance.id);
      const length = 1 + Math.max(0, ...after.map((d) => chain.get(d.id) ?? 0));
      chain.set(instance.id, length);
      priority.set(instance.id, after.every((d) => d.type.gather) ? Number.MAX_SAFE_INTEGER : length);
    }
    return priority;
  }

  private closure(ids: Iterable<string>, next: (id: string) => readonly string[]): Set<string> {
    const seen = new Set<string>();
    const queue = [...ids];
    // An index instead of shift(): a grid's lineage walks would otherwise be quadratic in long queues.
    for (let i = 0; i < queue.length; i += 1) {
      const id = queue[i] as string;
      if (seen.has(id)) continue;
      seen.add(id);
      queue.push(...next(id));
    }
    return seen;
  }
}
