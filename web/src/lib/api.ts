// Typed fetch helpers over the JSON API (see /docs). The types come from the server's OpenAPI schema:
// `make web` writes web/openapi.json and generates ./api-types.ts from it (openapi-typescript), so a
// call names its endpoint as the schema does and gets the schema's parameter and response types:
//
//   const run = await api.get("/api/runs/{run_id}", { path: { run_id: id } });
//   const page = await api.get("/api/rows", { query: { run: id, q: "iou < 0.5", limit: 50 } });
//
// An endpoint whose response the schema does not describe yet (no response model) answers `any`.

import type { components, operations, paths } from "./api-types";

export type { components, operations, paths };
export type Schemas = components["schemas"];

export class ApiError extends Error {
  constructor(public status: number, message: string, public body: any) {
    super(message);
  }
}

type Method = "get" | "post" | "put" | "patch" | "delete";
/** The paths that have an operation for `M`. */
export type PathsWith<M extends Method> = { [P in keyof paths]: [NonNullable<paths[P][M]>] extends [never] ? never : P }[keyof paths];
type Op<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

// the JSON of a 200 (or 201) answer
type Json<X> = X extends { content: { "application/json": infer J } } ? J : unknown;
type Ok<O> = O extends { responses: infer R } ? (R extends { 200: infer X } ? Json<X> : R extends { 201: infer X } ? Json<X> : unknown) : unknown;
/** `T` when the schema describes it, else `Fallback`: an untyped endpoint answers `unknown` or a bare string-keyed object. */
export type Described<T, Fallback = any> = unknown extends T ? Fallback
  : T extends readonly (infer E)[] ? (unknown extends E ? Fallback : string extends keyof E ? Fallback : T)
  : string extends keyof T ? Fallback : T;
/** What an endpoint answers, e.g. `Resp<"/api/runs/{run_id}">`. */
export type Resp<P extends keyof paths, M extends Method = "get"> = Described<Ok<Op<P, M>>>;

// what a call passes: path parameters (text or numbers: they go into the URL), query parameters, a JSON body
type PathOf<O> = O extends { parameters: { path: infer PP } } ? { path: { [K in keyof PP]: string | number } } : {};
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? ([NonNullable<Q>] extends [never] ? {} : { query?: NonNullable<Q> }) : {};
type BodyOf<O> = O extends { requestBody: { content: { "application/json": infer B } } } ? { body: B }
  : O extends { requestBody?: { content: { "application/json": infer B } } } ? { body?: B } : {};
export type Init<O> = PathOf<O> & QueryOf<O> & BodyOf<O>;
type Args<I> = {} extends I ? [init?: I] : [init: I];

async function call(method: string, url: string, body?: unknown): Promise<any> {
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
  return data;
}

/** The URL of `path` (as the schema names it) with its path parameters filled in and its query string. */
export function url(path: string, init: { path?: Record<string, unknown>; query?: object } = {}): string {
  const filled = path.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = init.path?.[k];
    if (v === undefined || v === null) throw new Error(`${path}: no value for {${k}}`);
    return encodeURIComponent(String(v));
  });
  return filled + qs((init.query ?? {}) as Record<string, unknown>);
}

function request(method: Method, path: string, init: { path?: Record<string, unknown>; query?: object; body?: unknown } = {}) {
  const body = init.body !== undefined ? init.body : method === "post" ? {} : undefined;
  return call(method.toUpperCase(), url(path, init), body);
}

/** One typed function per HTTP method; see the top of this file. */
export const api = {
  get: <P extends PathsWith<"get">>(path: P, ...[init]: Args<Init<Op<P, "get">>>): Promise<Resp<P, "get">> =>
    request("get", path, init as object),
  post: <P extends PathsWith<"post">>(path: P, ...[init]: Args<Init<Op<P, "post">>>): Promise<Resp<P, "post">> =>
    request("post", path, init as object),
  put: <P extends PathsWith<"put">>(path: P, ...[init]: Args<Init<Op<P, "put">>>): Promise<Resp<P, "put">> =>
    request("put", path, init as object),
  patch: <P extends PathsWith<"patch">>(path: P, ...[init]: Args<Init<Op<P, "patch">>>): Promise<Resp<P, "patch">> =>
    request("patch", path, init as object),
  delete: <P extends PathsWith<"delete">>(path: P, ...[init]: Args<Init<Op<P, "delete">>>): Promise<Resp<P, "delete">> =>
    request("delete", path, init as object),
};

export function qs(params: Record<string, unknown>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

// The gallery's page, row and object: the schema's types once the server declares a response model for
// GET /api/rows, until then these shapes (what the server sends today).
export type Page = Described<Ok<Op<"/api/rows", "get">>, PageShape>;
export type Row = Described<NonNullable<Page["rows"]>[number], RowShape>;
export type Obj = Described<NonNullable<Row["annotations"]>[number], ObjShape>;

interface ObjShape {
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

interface RowShape {
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
  annotations: ObjShape[];
  predictions: ObjShape[];
}

interface PageShape {
  total: number;
  offset: number;
  limit: number;
  confidence: number | null; // the thresholds the server used (null without a run)
  iou: number | null;
  rows: RowShape[];
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
