// COCO run-length encoded masks in the browser: decode the compressed "counts" string (pycocotools'
// maskApi.c rleFrString) and paint a mask as a semi-transparent, outlined colour layer (a PNG data URL).
//
// RLE runs are column-major (down each column, then the next column) and start with a run of zeros.

export interface Rle {
  size: [number, number]; // [height, width]
  counts: string | number[];
}

/** The run lengths of a compressed COCO RLE string (as pycocotools' rleFrString). */
export function decodeCounts(s: string): number[] {
  const cnts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = 1;
    while (more) {
      if (p >= s.length) throw new Error(`truncated RLE string at character ${p}`);
      const c = s.charCodeAt(p) - 48;
      x += (c & 0x1f) * 2 ** (5 * k); // no 32-bit overflow for long runs
      more = c & 0x20;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign-extend
    }
    if (cnts.length > 2) x += cnts[cnts.length - 2];
    cnts.push(x);
  }
  return cnts;
}

export interface MaskStats {
  area: number; // foreground pixels
  bbox: [number, number, number, number]; // x, y, w, h as pycocotools' toBbox
}

/** Foreground pixel count and bounding box, without allocating the full mask. */
export function maskStats(rle: Rle): MaskStats {
  const [h] = rle.size;
  const cnts = typeof rle.counts === "string" ? decodeCounts(rle.counts) : rle.counts;
  let idx = 0;
  let area = 0;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let i = 0; i < cnts.length; i++) {
    const n = cnts[i];
    if (i % 2 === 1 && n > 0) {
      const a = idx, b = idx + n - 1; // first and last pixel (column-major)
      const ca = Math.floor(a / h), cb = Math.floor(b / h);
      area += n;
      x0 = Math.min(x0, ca);
      x1 = Math.max(x1, cb);
      if (ca === cb) {
        y0 = Math.min(y0, a % h);
        y1 = Math.max(y1, b % h);
      } else {
        y0 = 0;
        y1 = h - 1;
      }
    }
    idx += n;
  }
  if (area === 0) return { area: 0, bbox: [0, 0, 0, 0] };
  return { area, bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1] };
}

/** The mask on a grid of at most ``maxSide`` pixels a side, row-major: the share of each cell's source
 * pixels that are foreground (1 everywhere inside the mask; exact 0/1 when the grid is full size). */
export function rasterize(rle: Rle, maxSide: number): { data: Float32Array; w: number; h: number; full: boolean } {
  const [H, W] = rle.size;
  const s = Math.min(1, maxSide / Math.max(H, W, 1));
  const w = Math.max(1, Math.round(W * s)), h = Math.max(1, Math.round(H * s));
  const data = new Float32Array(w * h);
  const cnts = typeof rle.counts === "string" ? decodeCounts(rle.counts) : rle.counts;
  const ty = new Int32Array(H); // source row -> target row
  for (let y = 0; y < H; y++) ty[y] = Math.min(h - 1, Math.floor(y * s));
  const next = new Int32Array(H); // source row -> first source row of the next target row
  for (let y = H - 1; y >= 0; y--) next[y] = y + 1 < H && ty[y + 1] === ty[y] ? next[y + 1] : y + 1;
  const inc = Math.min(1, s * s); // one source pixel's share of a target cell
  let idx = 0;
  for (let i = 0; i < cnts.length; i++) {
    const n = cnts[i];
    if (i % 2 === 1) {
      // walk the run column by column, and each column segment target row by target row
      for (let j = idx, end = Math.min(idx + n, H * W); j < end;) {
        const x = Math.floor(j / H), col = x * H;
        const yEnd = Math.min(end, col + H) - col;
        const base = Math.min(w - 1, Math.floor(x * s));
        for (let y = j - col; y < yEnd;) {
          const stop = Math.min(yEnd, next[y]);
          data[ty[y] * w + base] += (stop - y) * inc;
          y = stop;
        }
        j = col + yEnd;
      }
    }
    idx += n;
  }
  return { data, w, h, full: s === 1 };
}

function rgbOf(css: string): [number, number, number] {
  const ctx = document.createElement("canvas").getContext("2d");
  if (!ctx) return [255, 0, 0];
  ctx.fillStyle = css; // the browser normalises any CSS colour to #rrggbb
  const hex = String(ctx.fillStyle);
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 0];
}

export interface MaskLayer extends MaskStats {
  url: string; // PNG data URL, to be stretched over the row's width x height
  full: boolean; // painted at the mask's own resolution (else downscaled)
}

const cache = new Map<string, MaskLayer>();

/** The mask painted in ``colour`` (fill at ``fillAlpha``, a solid outline), cached under ``key``. */
export function maskLayer(key: string, rle: Rle, colour: string, maxSide: number, fillAlpha = 0.35): MaskLayer {
  const k = `${key}|${rle.counts.length}|${maxSide}|${colour}|${fillAlpha}`;
  const hit = cache.get(k);
  if (hit) return hit;
  const { data, w, h, full } = rasterize(rle, maxSide);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const [r, g, b] = rgbOf(colour);
  let url = "";
  if (ctx) {
    const img = ctx.createImageData(w, h);
    const px = img.data;
    const fill = Math.round(fillAlpha * 255);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const cov = Math.min(1, data[i]);
        if (cov <= 0) continue;
        // outline: a mostly-covered cell next to a mostly-empty one (or the border)
        const edge = cov >= 0.5 && (x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
          data[i - 1] < 0.5 || data[i + 1] < 0.5 || data[i - w] < 0.5 || data[i + w] < 0.5);
        const o = i * 4;
        px[o] = r;
        px[o + 1] = g;
        px[o + 2] = b;
        // downscaled cells fade with their coverage, but thin parts stay visible
        px[o + 3] = edge ? 255 : Math.round(fill * Math.max(0.6, Math.min(1, cov * 2)));
      }
    }
    ctx.putImageData(img, 0, 0);
    url = canvas.toDataURL("image/png");
  }
  const layer = { url, full, ...maskStats(rle) };
  if (cache.size > 2000) cache.clear();
  cache.set(k, layer);
  return layer;
}
