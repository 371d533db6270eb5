// Renders the Projector's density raster (lib/density-raster.ts) off the main thread: the page keeps moving the last
// raster while this one computes the next. It holds the points, their colours, the view's mask and the selection;
// each `render` answers with the RGBA pixels (transferred) and the view they show.
import { Bins, render, type Points, type View } from "./density-raster";

const pts: Points = { xs: new Float32Array(0), ys: new Float32Array(0), cat: null, val: null, inView: null, selected: null,
  palette: new Uint8Array(3) };
let bins: Bins | null = null;

export type RasterMessage =
  | { type: "points"; xs: Float32Array; ys: Float32Array }
  | { type: "colours"; cat: Uint16Array | null; val: Float32Array | null; palette: Uint8Array }
  | { type: "mask"; inView: Uint8Array | null }
  | { type: "selected"; selected: Uint32Array | null }
  | { type: "render"; token: number; view: View; width: number; height: number; size: number };

self.onmessage = (e: MessageEvent<RasterMessage>) => {
  const m = e.data;
  if (m.type === "points") { pts.xs = m.xs; pts.ys = m.ys; }
  else if (m.type === "colours") { pts.cat = m.cat; pts.val = m.val; pts.palette = m.palette; }
  else if (m.type === "mask") pts.inView = m.inView;
  else if (m.type === "selected") pts.selected = m.selected;
  else {
    const t0 = performance.now();
    if (!bins || bins.width !== m.width || bins.height !== m.height) bins = new Bins(m.width, m.height);
    const pixels = new Uint8ClampedArray(m.width * m.height * 4);
    const landed = render(pts, m.view, m.size, bins, pixels);
    const ms = performance.now() - t0;
    (self as unknown as Worker).postMessage({ token: m.token, view: m.view, width: m.width, height: m.height, pixels, landed, ms },
      [pixels.buffer]);
  }
};
