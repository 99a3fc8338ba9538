/** A p-value for people: 3 significant digits, `<1e-4` below that. */
export function formatP(p: number | null): string {
  if (p === null) return '';
  return p < 1e-4 ? '<1e-4' : String(Number(p.toPrecision(3)));
}
