/**
 * One line per event on stderr: `<ISO time> <level> <message> key=value…`. OTEL_LOG_LEVEL picks the threshold
 * (same names as upstream: debug, info, warn, error). Set once from the validated config.
 */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Fields = Record<string, string | number | bigint | boolean | undefined>;

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
let threshold: LogLevel = "info";
let sink: (line: string) => void = (line) => process.stderr.write(line + "\n");

export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

export function logLevel(): LogLevel {
  return threshold;
}

/** Tests capture lines here instead of stderr. */
export function setLogSink(write: (line: string) => void): void {
  sink = write;
}

export function enabled(level: LogLevel): boolean {
  return rank[level] >= rank[threshold];
}

function formatValue(v: string | number | bigint | boolean): string {
  const s = String(v);
  return /[\s"=]/.test(s) || s === "" ? JSON.stringify(s) : s;
}

function emit(level: LogLevel, message: string, fields?: Fields): void {
  if (!enabled(level)) return;
  let line = `${new Date().toISOString()} ${level.padEnd(5)} ${message.replace(/\s*\n\s*/g, " ")}`;
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
  }
  sink(line);
}

export const log = {
  debug: (message: string, fields?: Fields) => emit("debug", message, fields),
  info: (message: string, fields?: Fields) => emit("info", message, fields),
  warn: (message: string, fields?: Fields) => emit("warn", message, fields),
  error: (message: string, fields?: Fields) => emit("error", message, fields),
};
