/** One stage of the graph as the report draws it. */
export interface DagStage {
  readonly id: string;
  /** The stage type (`uses`). */
  readonly uses: string;
  readonly needs: readonly string[];
  /** The matrix axes it is expanded over. */
  readonly axes: readonly string[];
  readonly instances: number;
  /** How many of its instances are in the store. */
  readonly computed: number;
}

/** Escapes text for XML and HTML. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/**
 * Each stage's needs without those implied by a longer path (split → seed
 * when seed also needs cluster, which needs split): the transitive reduction,
 * which keeps the drawing readable when one stage feeds almost every other.
 */
export function reducedNeeds(stages: readonly DagStage[]): Map<string, string[]> {
  const byId = new Map(stages.map((s) => [s.id, s]));
  const ancestors = new Map<string, Set<string>>();
  const ancestorsOf = (id: string, visiting: ReadonlySet<string> = new Set()): Set<string> => {
    const known = ancestors.get(id);
    if (known !== undefined) return known;
    const out = new Set<string>();
    for (const need of byId.get(id)?.needs ?? []) {
      if (visiting.has(need) || !byId.has(need)) continue;
      out.add(need);
      for (const a of ancestorsOf(need, new Set([...visiting, id]))) out.add(a);
    }
    ancestors.set(id, out);
    return out;
  };
  const reduced = new Map<string, string[]>();
  for (const stage of stages) {
    const needs = stage.needs.filter((n) => byId.has(n));
    reduced.set(stage.id, needs.filter((n) => !needs.some((other) => other !== n && ancestorsOf(other).has(n))));
  }
  return reduced;
}

const NODE_W = 190;
const NODE_H = 52;
const GAP_X = 56;
const GAP_Y = 18;
const PAD = 12;

/**
 * Draws the stage graph as an inline SVG, left to right: each stage in the
 * column of its longest path from a source, coloured by how much of it is in
 * the store (all, some, none), edges implied by longer paths left out (a
 * node's tooltip lists all its needs). No layout library: pipelines are small.
 */
export function dagSvg(stages: readonly DagStage[]): string {
  const byId = new Map(stages.map((s) => [s.id, s]));
  const depth = new Map<string, number>();
  const depthOf = (id: string, seen: ReadonlySet<string> = new Set()): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const needs = (byId.get(id)?.needs ?? []).filter((n) => byId.has(n) && !seen.has(n));
    const d = needs.length === 0 ? 0 : 1 + Math.max(...needs.map((n) => depthOf(n, new Set([...seen, id]))));
    depth.set(id, d);
    return d;
  };
  const drawn = reducedNeeds(stages);
  const columns: DagStage[][] = [];
  for (const stage of stages) (columns[depthOf(stage.id)] ??= []).push(stage);
  const rows = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  // One barycentre pass: each stage near the stages it needs, which removes most crossings in pipelines this size.
  const rowOf = new Map<string, number>();
  columns.forEach((column) => {
    const list = column ?? [];
    const weight = (s: DagStage): number => {
      const rows = (drawn.get(s.id) ?? []).map((n) => rowOf.get(n)).filter((r): r is number => r !== undefined);
      return rows.length === 0 ? Number.POSITIVE_INFINITY : rows.reduce((a, b) => a + b, 0) / rows.length;
    };
    const order = new Map(list.map((s, i) => [s.id, i]));
    list.sort((x, y) => weight(x) - weight(y) || (order.get(x.id) ?? 0) - (order.get(y.id) ?? 0));
    list.forEach((s, i) => rowOf.set(s.id, (rows - list.length) / 2 + i));
  });
  const width = PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X;
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  const position = new Map<string, { x: number; y: number }>();
  columns.forEach((column, c) => {
    const list = column ?? [];
    // Centre each column vertically so short columns sit between their neighbours.
    const offset = ((rows - list.length) * (NODE_H + GAP_Y)) / 2;
    list.forEach((stage, r) => position.set(stage.id, { x: PAD + c * (NODE_W + GAP_X), y: PAD + offset + r * (NODE_H + GAP_Y) }));
  });
  const edges: string[] = [];
  for (const stage of stages) {
    const to = position.get(stage.id);
    for (const need of drawn.get(stage.id) ?? []) {
      const from = position.get(need);
      if (from === undefined || to === undefined) continue;
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      edges.push(`<path class="edge" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 6},${y2}" fill="none" stroke="#8a8a8a" stroke-width="1.4" marker-end="url(#arrow)"/>`);
    }
  }
  const nodes = stages.map((stage) => {
    const at = position.get(stage.id) ?? { x: 0, y: 0 };
    const state = stage.computed === stage.instances ? 'complete' : stage.computed === 0 ? 'missing' : 'partial';
    const fill = state === 'complete' ? '#e3f4e1' : state === 'partial' ? '#fff2cc' : '#f4f4f4';
    const stroke = state === 'complete' ? '#5a9e55' : state === 'partial' ? '#d6a400' : '#a0a0a0';
    const detail = `${stage.uses}${stage.axes.length > 0 ? ` × ${stage.axes.join(', ')}` : ''}`;
    const count = `${stage.computed}/${stage.instances} in store`;
    return [
      `<g class="node node-${state}" transform="translate(${at.x},${at.y})">`,
      `<title>${escapeXml(`${stage.id}: ${detail}, ${count}${stage.needs.length > 0 ? `; needs ${stage.needs.join(', ')}` : ''}`)}</title>`,
      `<rect width="${NODE_W}" height="${NODE_H}" rx="6" fill="${fill}" stroke="${stroke}" stroke-width="1.5"${state === 'missing' ? ' stroke-dasharray="4 3"' : ''}/>`,
      `<text x="10" y="18" font-weight="bold" font-size="13">${escapeXml(stage.id)}</text>`,
      `<text x="10" y="33" font-size="11" fill="#444">${escapeXml(detail.length > 30 ? `${detail.slice(0, 29)}…` : detail)}</text>`,
      `<text x="10" y="46" font-size="10" fill="#666">${escapeXml(count)}</text>`,
      '</g>',
    ].join('');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="sans-serif" role="img" aria-label="stage graph">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a8a8a"/></marker></defs>',
    ...edges,
    ...nodes,
    '</svg>',
  ].join('\n');
}
