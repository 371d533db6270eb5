// Filter texts of the query language, put together the way the server reads a view: the open slice's
// filter AND the text filter `q` AND the dataset AND the confusion cell.

/** A clause made safe to AND with others: `a or b` gets parentheses (extra ones are harmless). */
export const wrap = (c: string) => (/\bor\b/i.test(c) ? `(${c})` : c);

/** The AND of filter texts (empty ones skipped); one text comes back as it is. */
export function and(...texts: (string | null | undefined)[]): string {
  const parts = texts.map((t) => (t ?? "").trim()).filter(Boolean);
  return parts.length === 1 ? parts[0] : parts.map(wrap).join(" and ");
}
