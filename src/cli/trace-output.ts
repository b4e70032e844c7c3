/**
 * What `gotel trace` prints: finished spans as JSON lines (for scripts) or, for a person at a terminal, one tree
 * per trace with a small waterfall. It is a SpanExporter, so it sits behind the same BatchSpanProcessor as the
 * OTLP exporters and sees the kernel's IDs and times unchanged.
 */
import { SpanKind, SpanStatusCode, type Attributes, type AttributeValue, type HrTime } from "@opentelemetry/api";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";

export type TraceFormat = "tree" | "jsonl";

export interface TraceOutputOptions {
  format: TraceFormat;
  /** receives whole lines, each ending in "\n" */
  write: (text: string) => void;
  color: boolean;
  /** tree: how long to wait for more spans of a trace after its root arrived, ms; default 500 */
  settleMs?: number;
  /** tree: how long a trace whose root never comes (a dropped or untraced parent) waits, ms; default 10 × settleMs */
  orphanMs?: number;
  /** tree: spans held back at most; beyond it the oldest traces are printed early; default 10,000 */
  maxBufferedSpans?: number;
  now?: () => number;
}

const LINE_WIDTH = 120;
const BAR_WIDTH = 24;
const INDENT = "  ";
const KIND_WIDTH = 4;
const DURATION_WIDTH = 6;
/** the name column may take this much; the attributes get the rest of the line */
const NAME_COLUMN_MAX = 50;
/** a row: indent, name column, kind, duration, bar, then the attributes up to the line's end */
const NAME_PLUS_ATTRS = LINE_WIDTH - INDENT.length - 2 - KIND_WIDTH - 2 - DURATION_WIDTH - 2 - BAR_WIDTH - 2;
const DEFAULT_SETTLE_MS = 500;
const DEFAULT_MAX_BUFFERED = 10_000;
/** distinct trace ids remembered for the count and for "(continued)"; a long session must not grow without bound */
const SEEN_TRACES_MAX = 100_000;

const KIND_NAME: Record<SpanKind, string> = {
  [SpanKind.INTERNAL]: "INTERNAL",
  [SpanKind.SERVER]: "SERVER",
  [SpanKind.CLIENT]: "CLIENT",
  [SpanKind.PRODUCER]: "PRODUCER",
  [SpanKind.CONSUMER]: "CONSUMER",
};
const KIND_SHORT: Record<SpanKind, string> = {
  [SpanKind.INTERNAL]: "int",
  [SpanKind.SERVER]: "srv",
  [SpanKind.CLIENT]: "cli",
  [SpanKind.PRODUCER]: "prod",
  [SpanKind.CONSUMER]: "cons",
};
const STATUS_NAME: Record<SpanStatusCode, string> = {
  [SpanStatusCode.UNSET]: "UNSET",
  [SpanStatusCode.OK]: "OK",
  [SpanStatusCode.ERROR]: "ERROR",
};

/** ns since the epoch, exactly: a float would round away the last digits of a 19-digit number */
export function hrTimeToNs(t: HrTime): bigint {
  return BigInt(Math.trunc(t[0])) * 1_000_000_000n + BigInt(Math.round(t[1]));
}

function jsonValue(v: AttributeValue): unknown {
  return Array.isArray(v) ? [...v] : v;
}

function jsonAttributes(a: Attributes): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = jsonValue(v);
  return out;
}

export function spanToJson(span: ReadableSpan): Record<string, unknown> {
  const ctx = span.spanContext();
  const status: { code: string; message?: string } = { code: STATUS_NAME[span.status.code] ?? "UNSET" };
  if (span.status.message) status.message = span.status.message;
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? "",
    ...(ctx.traceState ? { traceState: ctx.traceState.serialize() } : {}),
    name: span.name,
    kind: KIND_NAME[span.kind] ?? "INTERNAL",
    startTimeUnixNano: hrTimeToNs(span.startTime).toString(),
    endTimeUnixNano: hrTimeToNs(span.endTime).toString(),
    attributes: jsonAttributes(span.attributes),
    // what spans made through the OpenTelemetry API carry besides (events, links, their tracer's scope)
    ...(span.events.length ? { events: span.events.map((e) => ({ name: e.name, timeUnixNano: hrTimeToNs(e.time).toString(), attributes: jsonAttributes(e.attributes ?? {}) })) } : {}),
    ...(span.links.length ? { links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId, attributes: jsonAttributes(l.attributes ?? {}) })) } : {}),
    status,
    scope: { name: span.instrumentationScope.name, ...(span.instrumentationScope.version ? { version: span.instrumentationScope.version } : {}) },
    resource: jsonAttributes(span.resource.attributes),
  };
}

/** 850ns, 850µs, 12.3ms, 1.20s, 1.50m: three significant digits, at most 6 columns */
export function formatDuration(ns: bigint): string {
  if (ns < 0n) ns = 0n;
  if (ns < 1000n) return `${ns}ns`;
  // [unit, its size in ns, the value (after rounding) at which the next unit takes over]
  const units: [string, number, number][] = [["µs", 1e3, 999.5], ["ms", 1e6, 999.5], ["s", 1e9, 59.95], ["m", 60e9, 59.95], ["h", 3600e9, Infinity]];
  const n = Number(ns);
  for (const [unit, size, next] of units) {
    const v = n / size;
    if (v >= next) continue;
    return `${v < 9.995 ? v.toFixed(2) : v < 99.95 ? v.toFixed(1) : v.toFixed(0)}${unit}`;
  }
  return `${n}ns`; // unreachable: hours always return
}

/** The cells [from, to) a span fills in a bar of `width` over the window; never empty. */
export function waterfallCells(start: bigint, end: bigint, t0: bigint, t1: bigint, width = BAR_WIDTH): [number, number] {
  const span = t1 - t0;
  if (span <= 0n) return [0, width];
  const w = BigInt(width);
  const clamp = (c: bigint): number => Number(c < 0n ? 0n : c > w ? w : c);
  let from = clamp(((start - t0) * w) / span);
  const to = clamp(((end - t0) * w + span - 1n) / span); // ceiling: a partly covered cell counts
  if (from >= width) from = width - 1;
  return [from, Math.max(to, from + 1)];
}

/** the waterfall without color: "·" outside the span, "█" inside */
export function waterfall(start: bigint, end: bigint, t0: bigint, t1: bigint, width = BAR_WIDTH): string {
  const [from, to] = waterfallCells(start, end, t0, t1, width);
  return "·".repeat(from) + "█".repeat(to - from) + "·".repeat(width - to);
}

const ANSI = { bold: "\x1b[1m", dim: "\x1b[2m", red: "\x1b[31m", green: "\x1b[32m", yellow: "\x1b[33m", cyan: "\x1b[36m" };
type Style = keyof typeof ANSI | undefined;
interface Piece {
  text: string;
  style?: Style;
}

/** Names and paths come from the target's memory: control characters would break lines or drive the terminal. */
function clean(s: string): string {
  return s.replace(/\p{Cc}/gu, "�");
}

function width(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function truncate(s: string, w: number): string {
  if (width(s) <= w) return s;
  if (w <= 0) return "";
  return Array.from(s).slice(0, w - 1).join("") + "…";
}

function padEnd(s: string, w: number): string {
  return s + " ".repeat(Math.max(0, w - width(s)));
}

function padStart(s: string, w: number): string {
  return " ".repeat(Math.max(0, w - width(s))) + s;
}

/** Pieces joined by one space, cut to `w` columns, painted only when `color`. */
function fitPieces(pieces: Piece[], w: number, color: boolean): string {
  let out = "";
  let used = 0;
  for (const p of pieces) {
    const sep = used > 0 ? 1 : 0;
    const room = w - used - sep;
    if (room <= 0) break;
    const text = truncate(p.text, room);
    out += " ".repeat(sep) + paint(color, p.style, text);
    used += sep + width(text);
    if (text !== p.text) break;
  }
  return out;
}

function paint(color: boolean, style: Style, s: string): string {
  return color && style && s ? `${ANSI[style]}${s}\x1b[0m` : s;
}

function str(v: AttributeValue | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  return clean(Array.isArray(v) ? v.join(",") : String(v));
}

/** The few attributes that say what happened, skipping what the span's name already says. */
function keyAttributes(span: ReadableSpan): Piece[] {
  const a = span.attributes;
  const pieces: Piece[] = [];
  const status = str(a["http.response.status_code"]);
  if (status) {
    const code = Number(status);
    pieces.push({ text: status, style: code >= 500 ? "red" : code >= 400 ? "yellow" : undefined });
  }
  // a gRPC call's status: OK plain, a server's failure red, any other code yellow
  const rpcStatus = str(a["rpc.status_code"]);
  if (rpcStatus) pieces.push({ text: rpcStatus, style: rpcStatus === "OK" ? undefined : span.status.code === SpanStatusCode.ERROR ? "red" : "yellow" });
  const notInName = (v: string | undefined) => v !== undefined && v !== "" && !span.name.includes(v);
  const target = [str(a["http.route"]), str(a["url.path"])].find(notInName);
  if (target) pieces.push({ text: target });
  for (const key of ["db.operation.name", "rpc.method"]) {
    const v = str(a[key]);
    if (notInName(v)) pieces.push({ text: v! });
  }
  const errorType = str(a["error.type"]);
  if (errorType && errorType !== status && errorType !== rpcStatus) pieces.push({ text: `err=${errorType}`, style: "red" });
  if (span.status.code === SpanStatusCode.ERROR) {
    const message = span.status.message ? `: ${clean(span.status.message)}` : "";
    pieces.push({ text: `ERROR${message}`, style: "red" });
  }
  return pieces;
}

function timeOfDay(ns: bigint): string {
  const d = new Date(Number(ns / 1_000_000n));
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

interface Row {
  span: ReadableSpan;
  prefix: string;
  orphan: boolean;
}

/** One trace's lines: a header, then the spans as a tree, orphans (parent never seen) last with a "?" marker. */
export function renderTrace(spans: readonly ReadableSpan[], color: boolean, continued = false): string[] {
  const start = (s: ReadableSpan) => hrTimeToNs(s.startTime);
  const end = (s: ReadableSpan) => hrTimeToNs(s.endTime);
  const byStart = (x: ReadableSpan, y: ReadableSpan) => {
    const d = start(x) - start(y);
    return d < 0n ? -1 : d > 0n ? 1 : x.spanContext().spanId < y.spanContext().spanId ? -1 : 1;
  };
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const children = new Map<string, ReadableSpan[]>();
  const roots: ReadableSpan[] = [];
  const orphans: ReadableSpan[] = [];
  for (const s of spans) {
    const parent = s.parentSpanContext;
    if (parent && ids.has(parent.spanId) && parent.spanId !== s.spanContext().spanId) {
      const list = children.get(parent.spanId) ?? [];
      list.push(s);
      children.set(parent.spanId, list);
    } else if (!parent || parent.isRemote) roots.push(s);
    else orphans.push(s);
  }
  roots.sort(byStart);
  orphans.sort(byStart);
  for (const list of children.values()) list.sort(byStart);

  const rows: Row[] = [];
  const visited = new Set<ReadableSpan>();
  const walk = (s: ReadableSpan, prefix: string, childPrefix: string, orphan: boolean) => {
    if (visited.has(s)) return;
    visited.add(s);
    rows.push({ span: s, prefix, orphan });
    const kids = children.get(s.spanContext().spanId) ?? [];
    kids.forEach((k, i) => {
      const last = i === kids.length - 1;
      walk(k, childPrefix + (last ? "└─ " : "├─ "), childPrefix + (last ? "   " : "│  "), false);
    });
  };
  for (const r of roots) walk(r, "", "", false);
  for (const o of orphans) walk(o, "? ", "  ", true);
  // a parent cycle has no top; print its members as orphans rather than lose them
  for (const s of [...spans].sort(byStart)) walk(s, "? ", "  ", true);

  let t0 = start(spans[0]!);
  let t1 = end(spans[0]!);
  for (const s of spans) {
    if (start(s) < t0) t0 = start(s);
    if (end(s) > t1) t1 = end(s);
  }

  const head = roots[0] ?? rows[0]!.span;
  const service = clean(String(head.resource.attributes["service.name"] ?? "?"));
  const count = `${spans.length} span${spans.length === 1 ? "" : "s"}`;
  const tail = `  ${formatDuration(t1 - t0)}  ${count}  trace ${head.spanContext().traceId}${continued ? " (continued)" : ""}`;
  const time = timeOfDay(t0);
  const room = LINE_WIDTH - width(time) - 2 - width(tail);
  const svc = truncate(service, Math.min(width(service), 24, room - 10));
  const name = truncate(clean(head.name), room - width(svc) - 2);
  const header = `${paint(color, "dim", time)}  ${paint(color, "bold", `${svc}  ${name}`)}${tail}`;

  const nameColumn = Math.min(NAME_COLUMN_MAX, Math.max(...rows.map((r) => width(r.prefix) + width(clean(r.span.name)))));
  const attrsColumn = NAME_PLUS_ATTRS - nameColumn;
  const lines = [header];
  for (const r of rows) {
    const fullName = clean(r.span.name);
    // only a very deep tree meets the cap: keep the innermost levels and a few letters of the name
    const keep = Math.min(width(fullName), 8);
    let prefix = r.prefix;
    if (width(prefix) + keep > nameColumn) prefix = "…" + Array.from(prefix).slice(-(nameColumn - keep - 1)).join("");
    const name = truncate(fullName, nameColumn - width(prefix));
    const marker = r.orphan ? prefix.slice(0, 2) : "";
    const tree = paint(color, r.orphan ? "yellow" : "dim", marker || prefix) + (marker ? prefix.slice(2) : "");
    const left = tree + name + " ".repeat(nameColumn - width(prefix) - width(name));
    const kind = paint(color, "dim", padEnd(KIND_SHORT[r.span.kind] ?? "int", KIND_WIDTH));
    const duration = padStart(formatDuration(end(r.span) - start(r.span)), DURATION_WIDTH);
    const pieces = keyAttributes(r.span);
    if (r.orphan) pieces.unshift({ text: `missing parent ${r.span.parentSpanContext?.spanId ?? "?"}`, style: "yellow" });
    const attrs = fitPieces(pieces, attrsColumn, color);
    const [from, to] = waterfallCells(start(r.span), end(r.span), t0, t1);
    const error = r.span.status.code === SpanStatusCode.ERROR;
    const bar =
      paint(color, "dim", "·".repeat(from)) +
      paint(color, error ? "red" : "cyan", "█".repeat(to - from)) +
      paint(color, "dim", "·".repeat(BAR_WIDTH - to));
    lines.push(`${INDENT}${left}  ${kind}  ${duration}  ${bar}${attrs ? "  " + attrs : ""}`);
  }
  return lines;
}

interface PendingTrace {
  traceId: string;
  spans: ReadableSpan[];
  /** a span with no parent or a remote one arrived: the trace can be printed once it goes quiet */
  rooted: boolean;
  lastArrival: number;
}

export class TraceOutput implements SpanExporter {
  readonly stats = { spans: 0, traces: 0 };
  private readonly opts: TraceOutputOptions;
  private readonly settleMs: number;
  private readonly orphanMs: number;
  private readonly maxBuffered: number;
  private readonly now: () => number;
  /** insertion order is arrival order of each trace's first span: the oldest is first to go at the cap */
  private readonly pending = new Map<string, PendingTrace>();
  private buffered = 0;
  private readonly seen = new Set<string>();
  private readonly printed = new Set<string>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerDue = Infinity;
  private closed = false;

  constructor(opts: TraceOutputOptions) {
    this.opts = opts;
    this.settleMs = opts.settleMs ?? DEFAULT_SETTLE_MS;
    this.orphanMs = opts.orphanMs ?? this.settleMs * 10;
    this.maxBuffered = opts.maxBufferedSpans ?? DEFAULT_MAX_BUFFERED;
    this.now = opts.now ?? Date.now;
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.closed) return done({ code: ExportResultCode.FAILED, error: new Error("gotel trace output is shut down") });
    try {
      for (const s of spans) this.count(s);
      if (this.opts.format === "jsonl") {
        if (spans.length > 0) this.opts.write(spans.map((s) => JSON.stringify(spanToJson(s)) + "\n").join(""));
      } else {
        for (const s of spans) this.buffer(s);
        while (this.buffered > this.maxBuffered) this.print(this.pending.values().next().value!);
        this.printSettled();
      }
      done({ code: ExportResultCode.SUCCESS });
    } catch (e) {
      // e.g. EPIPE when piped into `head`: tell the processor, never throw into it
      done({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  /** prints every trace still buffered, then nothing more */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.printAll();
    this.closed = true;
  }

  /** prints every trace still buffered, complete or not (the SDK never calls this; the CLI may) */
  async forceFlush(): Promise<void> {
    if (!this.closed) this.printAll();
  }

  summary(dropped: number): string {
    return `${this.stats.spans} spans, ${this.stats.traces} traces, ${dropped} dropped`;
  }

  private count(s: ReadableSpan): void {
    this.stats.spans++;
    const id = s.spanContext().traceId;
    if (this.seen.has(id)) return;
    this.stats.traces++;
    remember(this.seen, id);
  }

  private buffer(s: ReadableSpan): void {
    const traceId = s.spanContext().traceId;
    let t = this.pending.get(traceId);
    if (!t) {
      t = { traceId, spans: [], rooted: false, lastArrival: 0 };
      this.pending.set(traceId, t);
    }
    t.spans.push(s);
    t.lastArrival = this.now();
    if (!s.parentSpanContext || s.parentSpanContext.isRemote) t.rooted = true;
    this.buffered++;
  }

  private due(t: PendingTrace): number {
    return t.lastArrival + (t.rooted ? this.settleMs : this.orphanMs);
  }

  private printSettled(): void {
    const now = this.now();
    for (const t of [...this.pending.values()]) if (this.due(t) <= now) this.print(t);
    this.schedule();
  }

  private printAll(): void {
    for (const t of [...this.pending.values()]) this.print(t);
    this.schedule();
  }

  private print(t: PendingTrace): void {
    this.pending.delete(t.traceId);
    this.buffered -= t.spans.length;
    const continued = this.printed.has(t.traceId);
    remember(this.printed, t.traceId);
    this.opts.write(renderTrace(t.spans, this.opts.color, continued).join("\n") + "\n\n");
  }

  /** one timer for the earliest due trace, so a quiet session still prints without waiting for the next batch */
  private schedule(): void {
    let due = Infinity;
    for (const t of this.pending.values()) due = Math.min(due, this.due(t));
    if (due === this.timerDue) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = due;
    if (due === Infinity) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      try {
        this.printSettled();
      } catch {
        // a failed write here has no caller to tell; the next export reports it
      }
    }, Math.max(0, due - this.now()));
    this.timer.unref?.();
  }
}

function remember(set: Set<string>, id: string): void {
  set.add(id);
  if (set.size > SEEN_TRACES_MAX) set.delete(set.values().next().value!);
}
