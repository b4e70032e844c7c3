/**
 * One destination for spans: the SDK's BatchSpanProcessor in front of an exporter, with every span counted on its
 * way out (DESIGN.md decision 11). A span handed to `add` ends in exactly one of: exported (the receiver accepted
 * it), dropped because the queue was full, or export failed (after the exporter's own retries, or still unsent
 * when gotel stopped). The processor and the exporters stay the OpenTelemetry JS SDK's; this only watches them:
 *
 * - the queue: the processor holds `accepted - handed` spans (it hands a batch to the exporter synchronously as it
 *   takes it off its queue), so a span it would drop at `maxQueueSize` is counted here and never given to it;
 * - the results: the exporter is wrapped, its result callback counted; the processor is always told "success", so
 *   a failure is reported once, by us, not also thrown through the SDK's global error handler;
 * - the pace: the processor sends one batch and waits for its answer before the next. One receiver round trip per
 *   batch capped gotel at ~50,000 spans/s to a local Collector (p50 7 ms, p90 20 ms per 512 spans) and lost spans
 *   at the queue above that; a receiver 20 ms away would cap it at ~25,000. So the processor is told "done" as
 *   soon as a batch is sent while fewer than EXPORTS_IN_FLIGHT wait for their answers, and only when one answers
 *   after that. At most EXPORTS_IN_FLIGHT + 1 batches are with the exporter besides the queue (a receiver that
 *   never answers cannot make more), and a stop still waits for every answer (bounded by the export timeout).
 */
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { log } from "../log.ts";
import { RateLimitedWarning } from "./warnings.ts";

export interface QueueSettings {
  scheduledDelayMillis: number;
  exportTimeoutMillis: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
}

export interface ExportCounts {
  /** where the spans go: the receiver's URL, or the name of a local exporter */
  destination: string;
  exported: number;
  /** refused at the door: the processor's queue was full */
  queueFull: number;
  /** the exporter gave up on them (after its retries), or they were still unsent when gotel stopped */
  exportFailed: number;
  /** export_failed by reason, e.g. "connection refused" -> 1200 */
  failures: Record<string, number>;
}

/** An exporter that can say why an export failed in words a person at a terminal understands. */
export interface DescribedExporter {
  exporter: SpanExporter;
  destination: string;
  /** e.g. "connection refused", "timeout after 10000 ms", "HTTP 500 Internal Server Error" */
  describeFailure(error: Error | undefined): string;
}

const STOPPED_UNSENT = "not sent before gotel stopped (OTEL_BSP_EXPORT_TIMEOUT)";
/** batches sent and not answered yet, beyond which the processor waits for an answer before its next batch */
export const EXPORTS_IN_FLIGHT = 4;

export class ExportPipeline {
  private readonly processor: BatchSpanProcessor;
  private readonly counts: ExportCounts;
  private accepted = 0;
  private handed = 0;
  /** spans the exporter has and has not answered for yet */
  private inFlight = 0;
  /** batches the exporter has and has not answered for yet */
  private batchesInFlight = 0;
  /** the processor's "done" for a batch sent while EXPORTS_IN_FLIGHT others waited: given when one answers */
  private readonly held: (() => void)[] = [];
  /** resolves when the exporter has answered for every batch */
  private allAnswered?: () => void;
  private closed = false;
  private readonly failedWarning: RateLimitedWarning;
  private readonly queueWarning: RateLimitedWarning;

  constructor(private readonly target: DescribedExporter, private readonly settings: QueueSettings) {
    this.counts = { destination: target.destination, exported: 0, queueFull: 0, exportFailed: 0, failures: {} };
    this.failedWarning = new RateLimitedWarning("spans could not be exported", { to: target.destination });
    this.queueWarning = new RateLimitedWarning("spans dropped: the export queue is full", {
      to: target.destination, queue: settings.maxQueueSize,
      hint: "the receiver is slower than the spans come, or down; OTEL_BSP_MAX_QUEUE_SIZE sets the queue",
    });
    const counting: SpanExporter = {
      export: (spans, done) => this.export(spans, done),
      shutdown: async () => {
        await this.answered();
        await target.exporter.shutdown();
      },
      forceFlush: () => target.exporter.forceFlush?.() ?? Promise.resolve(),
    };
    this.processor = new BatchSpanProcessor(counting, {
      ...settings,
      maxExportBatchSize: Math.min(settings.maxExportBatchSize, settings.maxQueueSize),
    });
  }

  /** Queues one finished span (it must be sampled: the processor ignores the others). */
  add(span: ReadableSpan): void {
    if (this.closed) return this.fail(1, STOPPED_UNSENT);
    if (this.accepted - this.handed >= this.settings.maxQueueSize) {
      this.counts.queueFull++;
      this.queueWarning.add(1);
      return;
    }
    this.accepted++;
    this.processor.onEnd(span);
  }

  get stats(): ExportCounts {
    return { ...this.counts, failures: { ...this.counts.failures } };
  }

  /** Spans accepted and not yet answered for: queued, or with the exporter. */
  get pending(): number {
    return this.accepted - this.handed + this.inFlight;
  }

  /**
   * Exports what is queued, waiting at most OTEL_BSP_EXPORT_TIMEOUT; whatever has no answer by then is counted as
   * export_failed. Never throws: a failing receiver must not turn a clean stop into an error.
   */
  async shutdown(): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.settings.exportTimeoutMillis)));
    const flushed = this.processor.shutdown().catch((e: unknown) => {
      log.debug("span processor shutdown failed", { error: e instanceof Error ? e.message : String(e) });
    });
    await Promise.race([flushed, deadline]);
    clearTimeout(timer);
    const unsent = this.pending;
    this.closed = true;
    if (unsent > 0) this.fail(unsent, STOPPED_UNSENT);
    this.failedWarning.flush();
    this.queueWarning.flush();
  }

  private export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const n = spans.length;
    this.handed += n;
    this.inFlight += n;
    this.batchesInFlight++;
    let answered = false;
    const answer = (r: ExportResult): void => {
      if (answered) return;
      answered = true;
      this.batchesInFlight--;
      if (!this.closed) {
        this.inFlight -= n;
        if (r.code === ExportResultCode.SUCCESS) this.counts.exported += n;
        else this.fail(n, this.target.describeFailure(r.error));
      }
      this.held.shift()?.();
      if (this.batchesInFlight === 0) this.allAnswered?.();
    };
    const next = (): void => done({ code: ExportResultCode.SUCCESS });
    if (this.batchesInFlight <= EXPORTS_IN_FLIGHT) next();
    else this.held.push(next);
    try {
      this.target.exporter.export(spans, answer);
    } catch (e) {
      answer({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  /** Resolves once the exporter has answered for every batch it was given. */
  private answered(): Promise<void> {
    if (this.batchesInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.allAnswered = resolve));
  }

  private fail(n: number, reason: string): void {
    this.counts.exportFailed += n;
    this.counts.failures[reason] = (this.counts.failures[reason] ?? 0) + n;
    log.debug("a batch of spans could not be exported", { spans: n, to: this.target.destination, reason });
    this.failedWarning.add(n, reason);
  }
}
