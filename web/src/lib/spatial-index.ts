// The Projector's spatial index, built in a worker from copies of the drawn positions (the page keeps its own
// arrays, and a million-point build does not block it). The newest request wins: an older one still in the
// worker resolves to null.
let worker: Worker | null = null;
let latest = 0;
const waiting = new Map<number, (data: ArrayBuffer | null) => void>();

export function spatialIndex(xs: Float32Array, ys: Float32Array): Promise<ArrayBuffer | null> {
  if (!worker) {
    worker = new Worker(new URL("./spatial-index.worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<{ token: number; data: ArrayBuffer }>) => {
      const done = waiting.get(e.data.token);
      waiting.delete(e.data.token);
      done?.(e.data.token === latest ? e.data.data : null);
    };
  }
  const token = ++latest;
  for (const [t, done] of waiting) if (t < token) { waiting.delete(t); done(null); }
  const x = xs.slice(), y = ys.slice();
  return new Promise((resolve) => {
    waiting.set(token, resolve);
    worker!.postMessage({ token, xs: x, ys: y }, [x.buffer, y.buffer]);
  });
}
