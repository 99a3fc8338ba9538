/**
 * Topological order of a graph given as node -> dependencies, with
 * dependencies first and ties kept in the given order. Returns the cycles
 * (each as its nodes in path order) when there are any.
 */
export function topoSort(nodes: readonly string[], deps: (node: string) => readonly string[]): { order: string[]; cycles: string[][] } {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[][] = [];
  const stack: string[] = [];
  const visit = (node: string): void => {
    const s = state.get(node);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = stack.slice(stack.indexOf(node));
      // The same cycle is found once from each of its nodes; keep one.
      const id = [...cycle].sort().join('\0');
      if (!cycles.some((c) => [...c].sort().join('\0') === id)) cycles.push(cycle);
      return;
    }
    state.set(node, 'visiting');
    stack.push(node);
    for (const dep of deps(node)) if (nodes.includes(dep)) visit(dep);
    stack.pop();
    state.set(node, 'done');
    order.push(node);
  };
  for (const node of nodes) visit(node);
  return { order, cycles };
}
