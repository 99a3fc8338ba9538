/** What the graph needs of a node. */
export interface GraphNode {
  readonly id: string;
  readonly needs: Readonly<Record<string, readonly string[]>>;
  readonly type: { readonly gather: boolean };
}

/** Placeholder until the graph module lands. */
export class InstanceGraph<N extends GraphNode> {
  private readonly byId: Map<string, N>;
  private readonly deps = new Map<string, N[]>();
  constructor(private readonly instances: readonly N[]) {
    this.byId = new Map(instances.map((i) => [i.id, i]));
    for (const instance of instances) {
      for (const id of this.needsOf(instance.id)) {
        const list = this.deps.get(id);
        if (list === undefined) this.deps.set(id, [instance]);
        else list.push(instance);
      }
    }
  }
  node(id: string): N | undefined {
    return this.byId.get(id);
  }
  needsOf(id: string): readonly string[] {
    return [...new Set(Object.values(this.byId.get(id)?.needs ?? {}).flat())];
  }
  dependents(id: string): readonly N[] {
    return this.deps.get(id) ?? [];
  }
  priority(): ReadonlyMap<string, number> {
    const chain = new Map<string, number>();
    const priority = new Map<string, number>();
    for (const instance of [...this.instances].reverse()) {
      const after = this.dependents(instance.id);
      chain.set(instance.id, 1 + Math.max(0, ...after.map((d) => chain.get(d.id) ?? 0)));
      priority.set(instance.id, after.every((d) => d.type.gather) ? Number.MAX_SAFE_INTEGER : (chain.get(instance.id) ?? 0));
    }
    return priority;
  }
}
