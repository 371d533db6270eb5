// Thin typed fetch helpers over the JSON API (see /docs).

export class ApiError extends Error {
  constructor(public status: number, message: string, public body: any) {
    super(message);
  }
}

async function call<T>(method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: body !== undefined ? { "content-type": "application/json" } : undefined,
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!res.ok) {
    let msg = `${res.status}`;
    if (data && typeof data === "object") {
      if (typeof data.detail === "string") msg = data.detail;
      else if (Array.isArray(data.detail)) msg = data.detail.map((d: any) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    throw new ApiError(res.status, msg, data);
  }
  return data as T;
}

export const get = <T = any>(url: string) => call<T>("GET", url);
export const post = <T = any>(url: string, body?: unknown) => call<T>("POST", url, body ?? {});
export const put = <T = any>(url: string, body: unknown) => call<T>("PUT", url, body);
export const patch = <T = any>(url: string, body: unknown) => call<T>("PATCH", url, body);
export const del = <T = any>(url: string) => call<T>("DELETE", url);

export function qs(params: Record<string, unknown>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

export interface Obj {
  id: number;
  feature: string;
  kind: string;
  bbox?: [number, number, number, number];
  polygon?: number[][][];
  line?: number[][];
  point?: [number, number];
  mask?: { size: [number, number]; counts: string | number[] }; // COCO RLE at the row's height x width
  span?: [number, number];
  answer?: string;
  confidence?: number;
  iscrowd?: boolean;
}

export interface Row {
  id: number;
  global_key: string;
  dataset: string;
  media_type: string;
  width: number | null;
  height: number | null;
  split: string;
  metadata: Record<string, unknown>;
  tags: string[];
  text?: string;
  sort_value?: unknown;
  annotations: Obj[];
  predictions: Obj[];
}

export interface Page {
  total: number;
  offset: number;
  limit: number;
  confidence: number;
  iou: number;
  rows: Row[];
}

// One stable colour per class name.
export function colour(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${(h * 137.508) % 360}deg 80% 50%)`;
}

export function fmt(v: unknown, digits = 3): string {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return String(v);
}
