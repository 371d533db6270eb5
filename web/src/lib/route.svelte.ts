// Every view's state lives in the URL: /runs/:id/gallery?q=&sort=&c=&t=&slice=&dataset=&cell=&row=
// (a run's gallery, metrics or projector) and /catalog[/projector]?... (every data row of the workspace).
// `route` is reactive; `go()` changes it (pushState) and every view re-reads it.
//
// What the server reads: the view's filter is (the open slice `slice`) AND (the text filter `q`) AND
// `dataset` AND the confusion `cell`; `c` / `t` are the thresholds (absent: the run's own). UI-only:
// `edit=ID` names the slice whose filter is being edited (then `q` holds the whole edited filter and
// there is no `slice`), `auto=1` says that the slice is an auto slice (it cannot be updated in place).
// Find similar: `similar_space`, `similar_to` (anchor row ids, comma-separated), `similar_k` (the server ANDs
// the top-k similar rows with the rest and sorts by `similarity`). The projector: `space`, `method`, `dims`, `by`.
// Run comparison (/runs/:id/compare): `baseline` (a run id) is the run compared with; in the gallery it adds the
// baseline's predictions to each tile (`cmp=overlay` draws them over the run's, else side by side) and lets the
// filter use flip:TYPE and delta.METRIC.

export interface RouteState {
  view: "runs" | "gallery" | "metrics" | "projector" | "batches" | "slices" | "compare";
  run: string | null;
  params: Record<string, string>;
}

function parse(): RouteState {
  const parts = location.pathname.split("/").filter(Boolean);
  const params: Record<string, string> = {};
  new URLSearchParams(location.search).forEach((v, k) => (params[k] = v));
  if (parts[0] === "runs" && parts[1]) {
    const view = parts[2] === "metrics" ? "metrics" : parts[2] === "projector" ? "projector"
      : parts[2] === "slices" ? "slices" : parts[2] === "compare" ? "compare" : "gallery";
    return { view, run: decodeURIComponent(parts[1]), params };
  }
  if (parts[0] === "batches") return { view: "batches", run: null, params };
  // the catalog: every data row (/data is its older address)
  if (parts[0] === "catalog" || parts[0] === "data") return { view: parts[1] === "projector" ? "projector" : "gallery", run: null, params };
  return { view: "runs", run: null, params };
}

export const route = $state<RouteState>(parse());

function apply(r: RouteState) {
  route.view = r.view;
  route.run = r.run;
  route.params = r.params;
}

window.addEventListener("popstate", () => apply(parse()));

export function href(view: RouteState["view"], run: string | null, params: Record<string, string | null | undefined> = {}): string {
  const path = view === "runs" ? "/" : view === "batches" ? "/batches" : run === null ? (view === "projector" ? "/catalog/projector" : "/catalog")
    : `/runs/${encodeURIComponent(run)}/${view}`;
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

export function go(view: RouteState["view"], run: string | null, params: Record<string, string | null | undefined> = {}, replace = false) {
  const url = href(view, run, params);
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  apply(parse());
}

/** Change some query parameters of the current view (null removes one). */
export function setParams(patch: Record<string, string | null | undefined>, replace = false) {
  const next: Record<string, string | null | undefined> = { ...route.params, ...patch };
  go(route.view, route.run, next, replace);
}
