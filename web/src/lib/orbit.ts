// The Projector's camera: lays a projection's points out in regl-scatterplot's [-1, 1] square. 2D: centred and
// scaled (one scale for both axes). 3D: centred, scaled so the farthest point lies at 0.95 (inside at every turn), turned by `yaw`
// about the vertical axis, then tilted by `pitch` about the horizontal one, and dropped to the screen; the viewer
// sits on +z (a larger depth is nearer), so dragging right turns the front of the cloud right and dragging down
// tilts it down. Written for a million points per frame: typed arrays in and out, no allocation per point, the
// centre and scale computed once per projection (`frameOf`), not per turn.

export const DEFAULT_YAW = 0.6;
export const DEFAULT_PITCH = 0.35;
export const PITCH_LIMIT = 1.5; // just short of straight above / below (the tilt slider's range)
export const RADIANS_PER_PIXEL = 0.01; // an orbit drag: 314 px turns the cloud half way round
export const KEY_STEP = 0.1; // an arrow key (Shift: 5x)
export const DEPTH_LEVELS = 8; // depth cue: the 3D view's points in 8 bands from far to near

/** Where a projection sits: the centre of its bounding box and the scale that brings it into [-0.95, 0.95]
 * (3D: every point within 0.95 of the centre, so no turn takes a point out of the square). */
export interface Frame { dims: 2 | 3; mid: [number, number, number]; scale: number }

export function frameOf(coords: Float32Array, dims: 2 | 3): Frame {
  const n = coords.length / dims;
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0, k = 0; i < n; i++) for (let j = 0; j < dims; j++, k++) {
    const v = coords[k];
    if (v < lo[j]) lo[j] = v;
    if (v > hi[j]) hi[j] = v;
  }
  const mid: [number, number, number] = [0, 0, 0];
  let half = 1e-9;
  for (let j = 0; j < dims; j++) {
    if (!(hi[j] >= lo[j])) { lo[j] = 0; hi[j] = 0; } // (no points)
    mid[j] = (lo[j] + hi[j]) / 2;
    half = Math.max(half, (hi[j] - lo[j]) / 2);
  }
  if (dims === 2) return { dims, mid, scale: 0.95 / half };
  // 3D: the farthest point from the centre stays inside at every turn
  let r2 = 1e-18;
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    const x = coords[k] - mid[0], y = coords[k + 1] - mid[1], z = coords[k + 2] - mid[2];
    const d = x * x + y * y + z * z;
    if (d > r2) r2 = d;
  }
  return { dims, mid, scale: 0.95 / Math.sqrt(r2) };
}

export const wrapYaw = (a: number) => {
  if (a >= -Math.PI && a <= Math.PI) return a;
  const t = (a + Math.PI) % (2 * Math.PI);
  return (t < 0 ? t + 2 * Math.PI : t) - Math.PI;
};
export const clampPitch = (a: number) => Math.max(-PITCH_LIMIT, Math.min(PITCH_LIMIT, a));

/**
 * Lay the points out: x, y in [-1, 1] into `xs`, `ys`; in 3D also each point's depth band (0 = farthest,
 * DEPTH_LEVELS - 1 = nearest) into `depth`. Returns how many points fall in each band (for a far-to-near
 * draw order).
 */
export function layOut(coords: Float32Array, f: Frame, yaw: number, pitch: number,
  xs: Float32Array, ys: Float32Array, depth: Uint8Array | null, counts: Uint32Array | null): void {
  const n = xs.length;
  const s = f.scale, mx = f.mid[0], my = f.mid[1], mz = f.mid[2];
  if (f.dims === 2) {
    for (let i = 0, k = 0; i < n; i++, k += 2) {
      xs[i] = (coords[k] - mx) * s;
      ys[i] = (coords[k + 1] - my) * s;
    }
    return;
  }
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  // depth z2 lies in [-0.95, 0.95] (the scaled cloud fits in a ball of that radius): to a band
  const band = DEPTH_LEVELS / 1.9;
  const top = DEPTH_LEVELS - 1;
  if (counts) counts.fill(0);
  for (let i = 0, k = 0; i < n; i++, k += 3) {
    const x = (coords[k] - mx) * s;
    const y = (coords[k + 1] - my) * s;
    const z = (coords[k + 2] - mz) * s;
    const z1 = cy * z - sy * x;
    xs[i] = cy * x + sy * z;
    ys[i] = cp * y - sp * z1;
    if (depth) {
      let b = ((sp * y + cp * z1 + 0.95) * band) | 0;
      b = b < 0 ? 0 : b > top ? top : b;
      depth[i] = b;
      if (counts) counts[b]++;
    }
  }
}

/** The draw order far to near (a counting sort of the depth bands, stable), into `order`; `rank` its inverse. */
export function depthOrder(depth: Uint8Array, counts: Uint32Array, order: Uint32Array, rank: Uint32Array): void {
  const start = new Uint32Array(DEPTH_LEVELS);
  for (let b = 1; b < DEPTH_LEVELS; b++) start[b] = start[b - 1] + counts[b - 1];
  const n = depth.length;
  for (let i = 0; i < n; i++) {
    const j = start[depth[i]]++;
    order[j] = i;
    rank[i] = j;
  }
}

/** The bounding box [x0, y0, x1, y1] of a polygon (flat [x0, y0, x1, y1, ...]). */
export function polygonBox(polygon: ArrayLike<number>): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let k = 0; k < polygon.length >> 1; k++) {
    const px = polygon[2 * k], py = polygon[2 * k + 1];
    if (px < x0) x0 = px;
    if (px > x1) x1 = px;
    if (py < y0) y0 = py;
    if (py > y1) y1 = py;
  }
  return [x0, y0, x1, y1];
}

/** Whether (x, y) is inside a polygon (flat [x0, y0, x1, y1, ...], even-odd rule). */
export function insidePolygon(x: number, y: number, polygon: ArrayLike<number>): boolean {
  const m = polygon.length >> 1;
  let inside = false;
  for (let a = 0, b = m - 1; a < m; b = a++) {
    const ay = polygon[2 * a + 1], by = polygon[2 * b + 1];
    if ((ay > y) !== (by > y)) {
      const ax = polygon[2 * a], bx = polygon[2 * b];
      if (x < ((bx - ax) * (y - ay)) / (by - ay) + ax) inside = !inside;
    }
  }
  return inside;
}

/** The drawn indices inside a polygon (flat [x0, y0, x1, y1, ...], even-odd rule) of `rows` ([x, y, ...]). */
export function pointsInPolygon(rows: ArrayLike<ArrayLike<number>>, polygon: ArrayLike<number>): number[] {
  if (polygon.length >> 1 < 3) return [];
  const [x0, y0, x1, y1] = polygonBox(polygon);
  const out: number[] = [];
  for (let j = 0; j < rows.length; j++) {
    const x = rows[j][0], y = rows[j][1];
    if (x < x0 || x > x1 || y < y0 || y > y1) continue;
    if (insidePolygon(x, y, polygon)) out.push(j);
  }
  return out;
}
