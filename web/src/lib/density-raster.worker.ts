// Renders the Projector's density raster (lib/density-raster.ts) off the main thread: the page keeps moving the last
// raster while this one computes the next. It holds the points, their colours, the view's mask and the selection;
// each `render` answers with the RGBA pixels (transferred) and the view they show.
import { Scene, apply, type RasterMessage } from "./density-raster";

const scene = new Scene();

self.onmessage = (e: MessageEvent<RasterMessage>) => {
  const m = e.data;
  if (m.type !== "render") { apply(scene, m); return; }
  const t0 = performance.now();
  const { pixels, landed } = scene.render(m.view, m.width, m.height, m.size);
  const ms = performance.now() - t0;
  (self as unknown as Worker).postMessage({ token: m.token, view: m.view, width: m.width, height: m.height, pixels, landed, ms },
    [pixels.buffer]);
};
