// The Projector's CPU renderer for big 2D projections: the visible points binned into the canvas's device pixels
// (one pass over typed arrays, no WebGL), each pixel coloured by what "colour by" says of the points in it, drawn
// with putImageData. Headless and GPU-less browsers render WebGL in software, where a frame of a million points
// costs about a second; this pass costs tens of milliseconds.
//
// A pixel's colour: by a category, the majority class of its points (Boyer-Moore majority vote, one pass in the
// scene's spatial order: the true majority wherever one class holds more than half of the pixel's points, else one
// of its classes); by a
// metric, the mean of the points' values (NaN values left out; none left: the "none" colour) on the same colour
// ramp as the WebGL path. Points the view's filter excludes count only where a pixel has no point in the view, and
// are then drawn dim. The density shows as opacity over the background: a pixel with c points in the view has
// alpha 0.45 + 0.55 * min(1, log2(c) / 6) (1 point 0.45, 64 or more 1.0); a dimmed one 0.12 + 0.13 * the same
// (channels rounded to the nearest integer).
// Selected points are drawn white on top (a square 2 px wider than a point). The scale is fixed (not relative to
// the view's densest pixel), so a pan moves pixels without changing them. A point of side `size` > 1 covers a
// square whose top-left pixel is `(size - 1) >> 1` left of and above its own.

import { insidePolygon, polygonBox } from './orbit';

/** The camera: the layout point ([-1, 1] square, as regl-scatterplot's) at the canvas centre, and the zoom (1: the
 * square's height fills the canvas's height). */
export interface View { cx: number; cy: number; zoom: number }
export const HOME: View = { cx: 0, cy: 0, zoom: 1 };

/** Device pixels per layout unit, and the layout point under a device pixel (x right, y up in layout). */
export const unitPx = (v: View, height: number) => (v.zoom * height) / 2;
export function toLayout(v: View, width: number, height: number, px: number, py: number): [number, number] {
  const s = unitPx(v, height);
  return [v.cx + (px - width / 2) / s, v.cy - (py - height / 2) / s];
}
export function toPixel(v: View, width: number, height: number, x: number, y: number): [number, number] {
  const s = unitPx(v, height);
  return [width / 2 + (x - v.cx) * s, height / 2 - (y - v.cy) * s];
}

export const BACKGROUND: [number, number, number] = [0x0f, 0x17, 0x2a]; // #0f172a, the stage's
export const ALPHA_ONE = 0.45;
export const DIM_ONE = 0.12;
export const DIM_FULL = 0.25;
export const SATURATE_LOG2 = 6; // 64 points in a pixel: full opacity
const SATURATE = 2 ** SATURATE_LOG2;
const LITTLE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** What the points carry: `cat` codes (0 = none, k = palette entry k) or `val` values in [0, 1] (NaN = none). */
export interface Points {
  xs: Float32Array; // layout x, y
  ys: Float32Array;
  cat: Uint16Array | null;
  val: Float32Array | null;
  inView: Uint8Array | null; // 1: in the view, 0: dimmed (null: all in)
  selected: Uint32Array | null; // indices of the selected points
  palette: Uint8Array; // rgb triplets: categories (entry 0 = none), or for values entry 0 = none and then the ramp
}

/** Reusable per-pixel accumulators (reallocated when the canvas's size changes). */
export class Bins {
  readonly n: number;
  readonly candIn: Uint16Array; readonly voteIn: Int32Array; readonly countIn: Uint32Array; readonly sumIn: Float64Array;
  readonly numIn: Uint32Array;
  readonly candOut: Uint16Array; readonly voteOut: Int32Array; readonly countOut: Uint32Array; readonly sumOut: Float64Array;
  readonly numOut: Uint32Array;
  constructor(readonly width: number, readonly height: number) {
    const n = (this.n = width * height);
    this.candIn = new Uint16Array(n); this.voteIn = new Int32Array(n); this.countIn = new Uint32Array(n);
    this.sumIn = new Float64Array(n); this.numIn = new Uint32Array(n);
    this.candOut = new Uint16Array(n); this.voteOut = new Int32Array(n); this.countOut = new Uint32Array(n);
    this.sumOut = new Float64Array(n); this.numOut = new Uint32Array(n);
  }
  clear(values: boolean) {
    this.countIn.fill(0); this.countOut.fill(0);
    if (values) { this.sumIn.fill(0); this.numIn.fill(0); this.sumOut.fill(0); this.numOut.fill(0); }
    else { this.voteIn.fill(0); this.voteOut.fill(0); }
  }
}

const alphaOf = (c: number) => Math.min(1, Math.log2(c) / SATURATE_LOG2);

/**
 * Render the points at view `v` into `out` (RGBA, width x height, opaque). `size`: a point's side in device pixels
 * (1 for big projections). Returns how many points landed on the canvas.
 */
export function render(p: Points, v: View, size: number, bins: Bins, out: Uint8ClampedArray): number {
  const { width: W, height: H } = bins;
  const s = unitPx(v, H);
  // a point's square starts at pixel column floor(x * s + ox), row floor(oy - y * s) (`half` left of / above it)
  const half = (size - 1) >> 1;
  const ox = W / 2 - v.cx * s - half, oy = H / 2 + v.cy * s - half;
  const values = p.val !== null;
  bins.clear(values);
  const { xs, ys, cat, val, inView } = p;
  const { candIn, voteIn, countIn, sumIn, numIn, candOut, voteOut, countOut, sumOut, numOut } = bins;
  const n = xs.length;
  let landed = 0;
  // one point into pixel k (the majority vote, or the sum of the values)
  const add = values
    ? (i: number, k: number, inside: boolean) => {
      const value = val![i];
      if (inside) { countIn[k]++; if (value === value) { sumIn[k] += value; numIn[k]++; } }
      else { countOut[k]++; if (value === value) { sumOut[k] += value; numOut[k]++; } }
    }
    : (i: number, k: number, inside: boolean) => {
      const c = cat![i];
      if (inside) {
        countIn[k]++;
        if (voteIn[k] === 0) { candIn[k] = c; voteIn[k] = 1; } else if (candIn[k] === c) voteIn[k]++; else voteIn[k]--;
      } else {
        countOut[k]++;
        if (voteOut[k] === 0) { candOut[k] = c; voteOut[k] = 1; } else if (candOut[k] === c) voteOut[k]++; else voteOut[k]--;
      }
    };
  if (size === 1 && !values && inView === null) {
    // the common case of a big projection, written out (no call per point): classes, every point in the view
    for (let i = 0; i < n; i++) {
      const gx = xs[i] * s + ox, gy = oy - ys[i] * s;
      if (!(gx >= 0 && gx < W && gy >= 0 && gy < H)) continue; // (NaN too)
      landed++;
      const k = (gy | 0) * W + (gx | 0), c = cat![i];
      countIn[k]++;
      if (voteIn[k] === 0) { candIn[k] = c; voteIn[k] = 1; } else if (candIn[k] === c) voteIn[k]++; else voteIn[k]--;
    }
  } else if (size === 1) {
    for (let i = 0; i < n; i++) {
      const gx = xs[i] * s + ox, gy = oy - ys[i] * s;
      if (!(gx >= 0 && gx < W && gy >= 0 && gy < H)) continue;
      landed++;
      add(i, (gy | 0) * W + (gx | 0), inView === null || inView[i] === 1);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const fx = Math.floor(xs[i] * s + ox), fy = Math.floor(oy - ys[i] * s);
      if (!(fx > -size && fy > -size && fx < W && fy < H)) continue;
      landed++;
      const inside = inView === null || inView[i] === 1;
      for (let y = Math.max(0, fy); y < Math.min(H, fy + size); y++)
        for (let x = Math.max(0, fx); x < Math.min(W, fx + size); x++) add(i, y * W + x, inside);
    }
  }
  // the pixels: the background, or the colour over it at the density's opacity (a table per palette entry and count)
  const pal = p.palette, entries = pal.length / 3, ramp = entries - 1;
  const [br, bg, bb] = BACKGROUND;
  const px = new Uint32Array(out.buffer, out.byteOffset, bins.n);
  const pack = (r: number, g: number, b: number) => (LITTLE ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0);
  const over = (e: number, alpha: number) => pack(Math.round(br + (pal[3 * e] - br) * alpha), Math.round(bg + (pal[3 * e + 1] - bg) * alpha),
    Math.round(bb + (pal[3 * e + 2] - bb) * alpha));
  const T = SATURATE + 1; // counts 1 .. SATURATE, the last one for every count above
  const lutIn = new Uint32Array(entries * T), lutOut = new Uint32Array(entries * T);
  for (let e = 0; e < entries; e++) for (let c = 1; c < T; c++) {
    lutIn[e * T + c] = over(e, ALPHA_ONE + (1 - ALPHA_ONE) * alphaOf(c));
    lutOut[e * T + c] = over(e, DIM_ONE + (DIM_FULL - DIM_ONE) * alphaOf(c));
  }
  px.fill(pack(br, bg, bb));
  for (let k = 0; k < bins.n; k++) {
    const ci = countIn[k];
    if (ci > 0) {
      const entry = values ? (numIn[k] ? 1 + Math.min(ramp - 1, Math.floor((sumIn[k] / numIn[k]) * ramp)) : 0) : candIn[k];
      px[k] = lutIn[entry * T + (ci < SATURATE ? ci : SATURATE)];
      continue;
    }
    const co = countOut[k];
    if (co === 0) continue;
    const entry = values ? (numOut[k] ? 1 + Math.min(ramp - 1, Math.floor((sumOut[k] / numOut[k]) * ramp)) : 0) : candOut[k];
    px[k] = lutOut[entry * T + (co < SATURATE ? co : SATURATE)];
  }
  // the selection on top, white (a square one pixel wider than the point on each side)
  if (p.selected) {
    const white = pack(255, 255, 255), side = size + 2;
    for (const i of p.selected) {
      const fx = Math.floor(xs[i] * s + ox) - 1, fy = Math.floor(oy - ys[i] * s) - 1;
      if (!(fx > -side && fy > -side && fx < W && fy < H)) continue;
      for (let y = Math.max(0, fy); y < Math.min(H, fy + side); y++)
        for (let x = Math.max(0, fx); x < Math.min(W, fx + side); x++) px[y * W + x] = white;
    }
  }
  return landed;
}

/** The drawn point nearest to a layout point within `radius` layout units, using a KDBush-like `within`. */
export function nearest(within: (x: number, y: number, r: number) => number[], xs: Float32Array, ys: Float32Array,
  x: number, y: number, radius: number): number | null {
  let best: number | null = null, bestD = Infinity;
  for (const i of within(x, y, radius)) {
    const d = (xs[i] - x) ** 2 + (ys[i] - y) ** 2;
    if (d < bestD || (d === bestD && best !== null && i > best)) { bestD = d; best = i; }
  }
  return best;
}

/** The points inside a polygon (flat layout [x0, y0, x1, y1, ...], even-odd rule), candidates from a box query. */
export function inPolygon(range: (x0: number, y0: number, x1: number, y1: number) => number[], xs: Float32Array,
  ys: Float32Array, polygon: number[]): number[] {
  if (polygon.length >> 1 < 3) return [];
  const out = range(...polygonBox(polygon)).filter((i) => insidePolygon(xs[i], ys[i], polygon));
  return out.sort((a, b) => a - b);
}

/** Cells per side of the grid the points are sorted by (see `Scene`). */
const GRID = 1024;

/**
 * The points of one projection, kept in a spatial order (sorted by cell of a GRID x GRID grid over the layout
 * square, row by row): the binning pass then writes pixels near the ones before it, not all over the canvas (a
 * million random writes into a few megabytes of counters are mostly cache misses). Colours, mask and selection
 * come in the projection's order and are put into the same order here.
 */
export class Scene {
  private perm = new Uint32Array(0); // sorted position -> the projection's index
  private rank = new Uint32Array(0); // the projection's index -> sorted position
  readonly pts: Points = { xs: new Float32Array(0), ys: new Float32Array(0), cat: null, val: null, inView: null, selected: null,
    palette: new Uint8Array(3) };
  private bins: Bins | null = null;
  private sorted = true;

  /** New positions. `moved`: the same points moved (a 3D turn): no sorting (one frame each), and the colours, mask
   * and selection hold if the points were not sorted before either. */
  setPoints(xs: Float32Array, ys: Float32Array, moved = false) {
    if (moved) {
      const keep = !this.sorted && this.pts.xs.length === xs.length;
      this.sorted = false;
      this.perm = this.rank = new Uint32Array(0);
      this.pts.xs = xs;
      this.pts.ys = ys;
      if (!keep) this.pts.cat = this.pts.val = this.pts.inView = this.pts.selected = null;
      return;
    }
    this.sorted = true;
    const n = xs.length, cell = new Uint32Array(n), counts = new Uint32Array(GRID * GRID + 1);
    const q = (v: number) => { const c = Math.floor(((v + 1) / 2) * GRID); return c < 0 ? 0 : c >= GRID ? GRID - 1 : c; };
    for (let i = 0; i < n; i++) { const c = (xs[i] === xs[i] && ys[i] === ys[i]) ? (GRID - 1 - q(ys[i])) * GRID + q(xs[i]) : GRID * GRID; cell[i] = c; counts[c]++; }
    let sum = 0;
    for (let c = 0; c < counts.length; c++) { const k = counts[c]; counts[c] = sum; sum += k; }
    this.perm = new Uint32Array(n);
    this.rank = new Uint32Array(n);
    for (let i = 0; i < n; i++) { const j = counts[cell[i]]++; this.perm[j] = i; this.rank[i] = j; }
    this.pts.xs = this.gather(xs) as Float32Array;
    this.pts.ys = this.gather(ys) as Float32Array;
    this.pts.cat = this.pts.val = this.pts.inView = this.pts.selected = null;
  }
  private gather<T extends Float32Array | Uint16Array | Uint8Array>(a: T): T {
    if (!this.sorted) return a; // (the worker's own copy)
    const out = new (a.constructor as new (n: number) => T)(a.length);
    const perm = this.perm;
    for (let j = 0; j < perm.length; j++) out[j] = a[perm[j]];
    return out;
  }
  setColours(cat: Uint16Array | null, val: Float32Array | null, palette: Uint8Array) {
    this.pts.cat = cat && this.gather(cat);
    this.pts.val = val && this.gather(val);
    this.pts.palette = palette;
  }
  setMask(inView: Uint8Array | null) { this.pts.inView = inView && this.gather(inView); }
  setSelected(selected: Uint32Array | null) {
    this.pts.selected = selected && (this.sorted ? selected.map((i) => this.rank[i]) : selected);
  }
  get ready() { return this.pts.xs.length > 0 && (this.pts.cat !== null || this.pts.val !== null); }
  render(v: View, width: number, height: number, size: number): { pixels: Uint8ClampedArray; landed: number } {
    if (!this.bins || this.bins.width !== width || this.bins.height !== height) this.bins = new Bins(width, height);
    const pixels = new Uint8ClampedArray(width * height * 4);
    return { pixels, landed: render(this.pts, v, size, this.bins, pixels) };
  }
}

/** What the page tells the raster's worker. */
export type RasterMessage =
  | { type: "points"; xs: Float32Array; ys: Float32Array; moved?: boolean }
  | { type: "colours"; cat: Uint16Array | null; val: Float32Array | null; palette: Uint8Array }
  | { type: "mask"; inView: Uint8Array | null }
  | { type: "selected"; selected: Uint32Array | null }
  | { type: "render"; token: number; view: View; width: number; height: number; size: number };

/** A message's change to a scene (all but `render`). */
export function apply(s: Scene, m: RasterMessage) {
  if (m.type === "points") s.setPoints(m.xs, m.ys, m.moved);
  else if (m.type === "colours") s.setColours(m.cat, m.val, m.palette);
  else if (m.type === "mask") s.setMask(m.inView);
  else if (m.type === "selected") s.setSelected(m.selected);
}

