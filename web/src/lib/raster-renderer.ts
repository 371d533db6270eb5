// The Projector's density raster on a 2D canvas: the points, their colours, mask and selection go to a worker
// (lib/density-raster.worker.ts) that bins them into the canvas's device pixels, and the page puts them on the
// canvas (putImageData). Every pan or zoom moves and scales the last raster to the new view in the next animation
// frame with a CSS transform of the canvas (the compositor moves it; no pixel is redrawn), and asks for a new
// raster of the newest view whenever the worker is free (the newest view wins; views in between are skipped).
// The canvas's parent should clip it (overflow: hidden) and take the pointer events.
import { HOME, Scene, apply, unitPx, type RasterMessage, type View } from "./density-raster";

/** Animation frames that showed something new (`frames`), those of them that moved the view (`moved`), complete
 * rasters shown, the worker's time for the last one, the points on it. */
export interface RasterStats { frames: number; moved: number; rasters: number; rasterMs: number; landed: number }

export class RasterRenderer {
  view: View = { ...HOME };
  width = 1; // device pixels
  height = 1;
  dpr = 1;
  size = 1; // a point's side in device pixels
  readonly stats: RasterStats = { frames: 0, moved: 0, rasters: 0, rasterMs: 0, landed: 0 };
  private shown: View | null = null; // the view of the last frame
  private fresh = false; // a raster arrived since the last frame
  private ctx: CanvasRenderingContext2D;
  lastView: View | null = null; // the view of the raster on the canvas (read only outside)
  private worker: Worker | null = null;
  private local: Scene | null = null; // no worker to be had: the same work on this thread
  private sent = new Map<string, RasterMessage>(); // the newest message of each kind (replayed to a local scene)
  private busy = false;
  private dirty = false; // the data or the view changed since the raster under way was asked for
  private token = 0;
  private rafId = 0;
  private destroyed = false;
  /** Called just before a raster is asked for: the moment to hand over the newest positions (`setPoints(.., true)`)
   * and view, computed once per raster rather than once per pointer move. What it returns labels that raster
   * (`shownTag` once it is on the canvas). */
  prepare: (() => string) | null = null;
  shownTag = "";
  private askedTag = "";

  constructor(private canvas: HTMLCanvasElement, private onframe: (raster: boolean) => void) {
    // a CPU-backed 2D canvas (willReadFrequently): putImageData is a memory copy (no upload to a software GPU)
    this.ctx = canvas.getContext("2d", { willReadFrequently: true })!;
    canvas.style.transformOrigin = "0 0";
    try {
      this.worker = new Worker(new URL("./density-raster.worker.ts", import.meta.url), { type: "module" });
      this.worker.onmessage = (e) => this.received(e.data);
      this.worker.onerror = (e) => { console.error("the raster worker failed", e.message); this.worker = null; this.fallBack(); };
    } catch {
      this.fallBack();
    }
  }

  private fallBack() {
    this.local = new Scene();
    for (const m of this.sent.values()) apply(this.local, m);
    this.busy = false;
    this.refresh();
  }
  private send(m: RasterMessage) {
    if (m.type === "points" && !m.moved) this.sent.clear();
    this.sent.set(m.type, m);
    if (this.worker) this.worker.postMessage(m);
    else if (this.local) apply(this.local, m);
  }
  private get ready() {
    return this.sent.has("points") && this.sent.has("colours");
  }

  // The laid-out points, their colours, the view's mask and the selection (in the projection's order; the worker
  // gets copies). The setters take effect at the next `refresh`.
  setPoints(xs: Float32Array, ys: Float32Array, moved = false) { this.send({ type: "points", xs, ys, moved }); }
  setColours(cat: Uint16Array | null, val: Float32Array | null, palette: Uint8Array) { this.send({ type: "colours", cat, val, palette }); }
  setMask(inView: Uint8Array | null) { this.send({ type: "mask", inView }); }
  setSelected(selected: Uint32Array | null) { this.send({ type: "selected", selected }); }
  /** The canvas's size in CSS pixels (its backing store is that times the device pixel ratio). */
  resize(cssWidth: number, cssHeight: number, dpr: number) {
    const w = Math.max(1, Math.round(cssWidth * dpr)), h = Math.max(1, Math.round(cssHeight * dpr));
    if (w === this.width && h === this.height && dpr === this.dpr) return;
    this.width = w; this.height = h; this.dpr = dpr;
    this.canvas.width = w; this.canvas.height = h; // (clears it)
    this.lastView = null;
    this.refresh();
  }
  setView(v: View) {
    this.view = v;
    this.refresh();
  }

  /** Something changed: show the last raster at the current view in the next animation frame, and ask for a new one. */
  refresh() {
    this.dirty = true;
    this.request();
    this.frame();
  }
  private frame() {
    if (!this.rafId && !this.destroyed) this.rafId = requestAnimationFrame(() => { this.rafId = 0; this.blit(); });
  }

  private request() {
    if (this.busy || !this.dirty || this.destroyed) return;
    const tag = this.prepare?.() ?? "";
    if (!this.ready) return;
    this.askedTag = tag;
    this.busy = true;
    this.dirty = false;
    const m = { type: "render" as const, token: ++this.token, view: { ...this.view }, width: this.width, height: this.height, size: this.size };
    if (this.worker) { this.worker.postMessage(m); return; }
    // on this thread, after the current event (the moved frame shows first)
    setTimeout(() => {
      const t0 = performance.now();
      const { pixels, landed } = this.local!.render(m.view, m.width, m.height, m.size);
      this.received({ token: m.token, view: m.view, width: m.width, height: m.height, pixels, landed, ms: performance.now() - t0 });
    });
  }

  private received(r: { token: number; view: View; width: number; height: number; pixels: Uint8ClampedArray; landed: number; ms: number }) {
    this.busy = false;
    if (this.destroyed) return;
    if (r.width === this.width && r.height === this.height) {
      this.ctx.putImageData(new ImageData(r.pixels as Uint8ClampedArray<ArrayBuffer>, r.width, r.height), 0, 0);
      this.lastView = r.view;
      this.shownTag = this.askedTag;
      this.stats.rasters++;
      this.stats.rasterMs = r.ms;
      this.stats.landed = r.landed;
      this.fresh = true;
      this.place(); // (at once: the new pixels under the right transform)
      this.frame();
    }
    this.request(); // the newest view, if it moved on meanwhile
  }

  /** Show the last raster moved and scaled from its view to the current one (once per animation frame). */
  private blit() {
    if (!this.lastView || this.destroyed) return;
    const v = this.place();
    const moved = !this.shown || this.shown.cx !== v.cx || this.shown.cy !== v.cy || this.shown.zoom !== v.zoom;
    if (!moved && !this.fresh) return;
    this.shown = v;
    this.stats.frames++;
    if (moved) this.stats.moved++;
    const raster = this.fresh;
    this.fresh = false;
    this.onframe(raster);
  }
  /** The canvas's transform from the raster's view to the current one. */
  private place(): View {
    const W = this.width, H = this.height, v = this.view, l = this.lastView ?? v;
    const s = unitPx(v, H), r = s / unitPx(l, H);
    const dx = W / 2 + (l.cx - v.cx) * s - (W / 2) * r, dy = H / 2 - (l.cy - v.cy) * s - (H / 2) * r;
    this.canvas.style.transform = r === 1 && dx === 0 && dy === 0 ? "" : `translate(${dx / this.dpr}px, ${dy / this.dpr}px) scale(${r})`;
    return v;
  }

  destroy() {
    this.destroyed = true;
    cancelAnimationFrame(this.rafId);
    this.worker?.terminate();
    this.worker = null;
  }
}
