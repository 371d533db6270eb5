// Builds the Projector's spatial index (a KDBush over the drawn x, y) off the main thread: regl-scatterplot
// takes it ready-made (`draw(points, { spatialIndex })`) instead of building its own from a million small arrays.
import KDBush from "kdbush";

self.onmessage = (e: MessageEvent<{ token: number; xs: Float32Array; ys: Float32Array }>) => {
  const { token, xs, ys } = e.data;
  const index = new KDBush(xs.length, 16, Float32Array);
  for (let i = 0; i < xs.length; i++) index.add(xs[i], ys[i]);
  index.finish();
  (self as unknown as Worker).postMessage({ token, data: index.data }, [index.data as ArrayBuffer]);
};
