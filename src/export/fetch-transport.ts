/**
 * OTLP over HTTP sent with Bun's fetch. The OpenTelemetry JS exporter still serializes, bounds the exports in
 * flight and keeps its metrics (createOtlpNetworkExportDelegate); only the sending is ours. Its own transport
 * goes through node:http, which Bun emulates: under the ServeMux bench's load (~22,000 spans/s, batches of 512)
 * that cost gotel ~1.5 µs per span more than fetch of its ~11, measured side by side in one run.
 *
 * The package keeps its retrying wrapper to itself, so the retries are here, with the policy of the OTLP
 * exporter specification as that package applies it: a 429, 502, 503 or 504, a refused or reset connection and a
 * timeout are tried again, up to 5 more times, after 1 s, then 1.5 times longer each time (at most 5 s, ±20 %),
 * or after what the receiver's Retry-After says; never past the export's own deadline.
 *
 * Proxies: fetch honours HTTPS_PROXY, HTTP_PROXY and NO_PROXY, as the replaced system's Go exporter does; like Go,
 * a receiver on the loopback interface is always reached directly (Bun would send it to the proxy too).
 */
import { OTLPExporterError, type ExportResponse, type IExporterTransport } from "@opentelemetry/otlp-exporter-base";
import { GOTEL_VERSION } from "../version.ts";

const RETRIES = 5;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 5000;
const BACKOFF_GROWTH = 1.5;
const JITTER = 0.2;
const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);
const RETRYABLE_CODES = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EAI_AGAIN", "ENOTFOUND", "ENETUNREACH", "EHOSTUNREACH"]);
/** an answer is a few bytes (a partial success at most): a receiver that sends more is not read further */
export const MAX_ANSWER_BYTES = 4 << 20;

/** The answer's bytes, or undefined (and the rest not read) past MAX_ANSWER_BYTES. */
async function readAnswer(response: Response): Promise<Uint8Array | undefined> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    size += r.value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(r.value);
  }
  return Buffer.concat(chunks);
}

export interface FetchTransportOptions {
  url: string;
  /** the receiver's headers and the encoding's Content-Type */
  headers: Record<string, string>;
  compression: "gzip" | "none";
  /** told each HTTP status the receiver answers: a retryable one given up on is reported without it */
  onStatus?: (status: number) => void;
}

/** Retry-After as milliseconds to wait (seconds or an HTTP date), undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isInteger(seconds)) return Math.max(seconds, 0) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(at - now, 0);
}

/** localhost, 127.0.0.0/8 and ::1: never through a proxy */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export class FetchTransport implements IExporterTransport {
  private readonly headers: Record<string, string>;
  /** undefined: the proxy environment variables decide */
  private readonly proxy: false | undefined;

  constructor(private readonly opts: FetchTransportOptions) {
    this.proxy = isLoopback(opts.url) ? false : undefined;
    this.headers = { ...opts.headers, "User-Agent": `gotel/${GOTEL_VERSION}`, ...(opts.compression === "gzip" ? { "Content-Encoding": "gzip" } : {}) };
  }

  async send(data: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    const deadline = Date.now() + timeoutMillis;
    // the serializer writes into an ArrayBuffer of its own, never a shared one
    const body = this.opts.compression === "gzip" ? Bun.gzipSync(data as Uint8Array<ArrayBuffer>) : data;
    let backoff = FIRST_BACKOFF_MS;
    for (let retry = 0; ; retry++) {
      const result = await this.sendOnce(body, deadline - Date.now());
      if (result.status !== "retryable" || retry === RETRIES) return result;
      const jittered = Math.min(backoff * (1 + (Math.random() * 2 - 1) * JITTER), MAX_BACKOFF_MS);
      const wait = result.retryInMillis ?? jittered;
      backoff *= BACKOFF_GROWTH;
      if (Date.now() + wait >= deadline) return result;
      await Bun.sleep(wait);
    }
  }

  private async sendOnce(body: Uint8Array, timeoutMillis: number): Promise<ExportResponse> {
    let response: Response;
    let answer: Uint8Array | undefined;
    try {
      response = await fetch(this.opts.url, { method: "POST", headers: this.headers, body, proxy: this.proxy, signal: AbortSignal.timeout(Math.max(timeoutMillis, 1)) });
      answer = await readAnswer(response);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      if (error.name === "TimeoutError") return { status: "retryable", error: new Error("Request timed out") };
      const code = (error as { code?: unknown }).code;
      return { status: typeof code === "string" && RETRYABLE_CODES.has(code) ? "retryable" : "failure", error };
    }
    this.opts.onStatus?.(response.status);
    if (answer === undefined) return { status: "failure", error: new Error(`the receiver's answer is longer than ${MAX_ANSWER_BYTES} bytes`) };
    if (response.ok) return { status: "success", data: answer };
    if (RETRYABLE_STATUS.has(response.status)) return { status: "retryable", retryInMillis: retryAfterMs(response.headers.get("retry-after")) };
    return { status: "failure", error: new OTLPExporterError(response.statusText, response.status, new TextDecoder().decode(answer)) };
  }

  shutdown(): void {}
}
