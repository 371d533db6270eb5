// Text from imported files (class, feature, slice, tag and metadata names) is untrusted. Svelte's {expr}
// escapes by itself; anything written as HTML (ECharts tooltip formatters, {@html}) goes through escapeHtml
// first. (ECharts' own default tooltips escape names; its labels and axis labels are canvas text, not HTML,
// and must not be escaped or they would show the entities.)

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The text of `s` (any value, as String(s); null and undefined as "") with & < > " ' written as entities. */
export function escapeHtml(s: unknown): string {
  return (s === null || s === undefined ? "" : String(s)).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
