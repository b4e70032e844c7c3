/**
 * `gotel trace`: an ad-hoc session for a person at a terminal (or a script): attach, print spans as they
 * complete (a tree with a waterfall, or JSON lines), stop after --duration, --count spans or Ctrl-C, and end
 * with a one-line summary on stderr. OTLP export happens too with --otlp.
 */
import { Agent, type AgentStats } from "../agent.ts";
import type { EnvConfig } from "../config/env.ts";
import { spanExporter } from "../export/exporter.ts";
import { TraceOutput, type TraceFormat } from "./trace-output.ts";
import { formatReasons } from "../export/warnings.ts";
import { refuseUntraceable } from "./preflight.ts";
import { dropReasons, droppedBeforeExport } from "./stop-report.ts";
import { TARGET_FLAGS, targetSpec } from "./targets.ts";
import { stopSignal } from "./signals.ts";
import { parseFlags, UsageError } from "./usage.ts";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A JS timer holds a signed 32-bit count of milliseconds (about 596 hours); a longer one would fire at once. */
const MAX_DURATION_MS = 2 ** 31 - 1;

/** "30s", "1.5m", "500ms", "10" (seconds) -> ms, from 1 ms to MAX_DURATION_MS */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m || Number(m[1]) <= 0) throw new UsageError(`--duration needs a positive duration like 30s, 2m or 500ms, got '${text}'`);
  const ms = Number(m[1]) * UNITS[m[2] ?? "s"]!;
  if (ms < 1) throw new UsageError(`--duration needs at least 1ms, got '${text}'`);
  if (ms > MAX_DURATION_MS) throw new UsageError(`--duration is at most 596h (${MAX_DURATION_MS} ms), got '${text}'`);
  return Math.round(ms);
}

/** "--count N": a whole number of spans, 1 to 2^53-1 */
export function parseCount(text: string): number {
  const n = /^[1-9]\d*$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`--count needs a positive whole number of spans, got '${text}'`);
  return n;
}

/**
 * "12 spans, 5 traces, 0 dropped" (what the terminal got, and what it did not, with the reasons), then the
 * unsampled and, with --otlp, where the exported copies went: the same accounting as run's `stopped` line.
 */
export function traceSummary(output: Pick<TraceOutput, "summary">, s: AgentStats): string {
  const [terminal, otlp] = s.exports;
  const lost = droppedBeforeExport(s);
  const reasons = dropReasons(s, terminal?.queueFull ?? 0);
  if (terminal && terminal.exportFailed > 0) reasons["not printed"] = terminal.exportFailed;
  let line = output.summary(lost + (terminal ? terminal.queueFull + terminal.exportFailed : 0));
  if (Object.keys(reasons).length) line += ` (${formatReasons(reasons)})`;
  if (s.unsampled > 0) line += `, ${s.unsampled} unsampled`;
  if (otlp) {
    line += `; OTLP to ${otlp.destination}: ${otlp.exported} exported, ${lost + otlp.queueFull} dropped, ${otlp.exportFailed} failed`;
    if (otlp.exportFailed > 0) line += ` (${formatReasons(otlp.failures)})`;
  }
  return line;
}

export async function traceCommand(args: string[], env: EnvConfig): Promise<number> {
  const { values } = parseFlags(args, {
    ...TARGET_FLAGS,
    duration: { type: "string" },
    count: { type: "string" },
    format: { type: "string" },
    otlp: { type: "boolean" },
  });
  const durationMs = values.duration !== undefined ? parseDuration(values.duration) : undefined;
  const count = values.count !== undefined ? parseCount(values.count) : undefined;
  const targets = targetSpec(values, env);
  const tty = process.stdout.isTTY === true;
  const format = (values.format ?? (tty ? "tree" : "jsonl")) as TraceFormat;
  if (format !== "tree" && format !== "jsonl") throw new UsageError(`--format is tree or jsonl, got '${values.format}'`);
  refuseUntraceable(targets);

  const output = new TraceOutput({ format, write: (t) => process.stdout.write(t), color: tty && !process.env.NO_COLOR });
  const otlp = values.otlp ? await spanExporter(env) : undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let seen = 0;
  void stopSignal().then(() => finish());
  // --duration counts from now: attaching to many processes (--all) takes a while and is part of the session
  const timer = durationMs !== undefined ? setTimeout(finish, durationMs) : undefined;
  const agent = await Agent.start({
    env,
    targets,
    exporters: [{ exporter: { exporter: output, destination: "terminal", describeFailure: (e) => e?.message ?? "not printed" }, delayMs: 100 }, ...(otlp ? [{ exporter: otlp }] : [])],
    onSpan: () => {
      if (count !== undefined && ++seen >= count) finish();
    },
  });
  await finished;
  clearTimeout(timer);
  await agent.stop();
  await output.shutdown();
  process.stderr.write(`${traceSummary(output, agent.stats)}\n`);
  return 0;
}
