// The Projector's spatial index, built in a worker from the drawn positions (a million-point build does not block
// the page). The arrays passed in move to the worker (the caller hands over copies). The newest request wins: an
// older one still in the worker resolves to null.
import KDBush from "kdbush";

let worker: Worker | null = null;
let latest = 0;
const waiting = new Map<number, { resolve: (data: ArrayBuffer | null) => void; reject: (e: Error) => void }>();

/** The same index on this thread (no worker to be had). */
function here(xs: Float32Array, ys: Float32Array): ArrayBuffer {
  const index = new KDBush(xs.length, 16, Float32Array);
  for (let i = 0; i < xs.length; i++) index.add(xs[i], ys[i]);
  index.finish();
  return index.data as ArrayBuffer;
}

export function spatialIndex(xs: Float32Array, ys: Float32Array): Promise<ArrayBuffer | null> {
  if (!worker) {
    try {
      worker = new Worker(new URL("./spatial-index.worker.ts", import.meta.url), { type: "module" });
    } catch {
      return Promise.resolve(here(xs, ys));
    }
    worker.onmessage = (e: MessageEvent<{ token: number; data: ArrayBuffer }>) => {
      const done = waiting.get(e.data.token);
      waiting.delete(e.data.token);
      done?.resolve(e.data.token === latest ? e.data.data : null);
    };
    worker.onerror = (e) => {
      for (const done of waiting.values()) done.reject(new Error(`the spatial index worker failed: ${e.message}`));
      waiting.clear();
      worker = null;
    };
  }
  const token = ++latest;
  for (const [t, done] of waiting) if (t < token) { waiting.delete(t); done.resolve(null); }
  return new Promise((resolve, reject) => {
    waiting.set(token, { resolve, reject });
    worker!.postMessage({ token, xs, ys }, [xs.buffer, ys.buffer]);
  });
}
