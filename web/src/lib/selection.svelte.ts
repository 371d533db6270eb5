// The data rows the user has selected: one selection shared by the gallery, the projector and the catalog
// (a lasso in the projector becomes the gallery's selection; "Open in catalog" keeps it).

export const selection = $state<{ ids: Set<number> }>({ ids: new Set() });

export function select(ids: Iterable<number>) {
  selection.ids = new Set(ids);
}

export function toggle(id: number) {
  const s = new Set(selection.ids);
  if (s.has(id)) s.delete(id);
  else s.add(id);
  selection.ids = s;
}

export const MAX_ANCHORS = 20; // Find similar takes 1 to 20 rows (the reference product's limit)
export const MAX_KEY_FILTER = 1000; // rows a `global_key in (...)` filter may list (it travels in the URL)

/** A filter naming exactly these rows by global key. */
export function keysFilter(keys: string[]): string {
  return `global_key in (${keys.map((k) => JSON.stringify(k)).join(", ")})`;
}

/** The Find-similar parameters of a view's URL (absent ones as null). */
export function similarParams(p: Record<string, string>) {
  const k = p.similar_k && /^\d+$/.test(p.similar_k) ? Number(p.similar_k) : null;
  return { similar_space: p.similar_space ?? null, similar_to: p.similar_to ?? null, similar_k: k };
}
