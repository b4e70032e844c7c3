/**
 * OTEL_TRACES_SAMPLER[_ARG] and OTEL_PROPAGATORS as the kernel applies them (bpf/include/trace_context.h):
 * sampling is decided when a span starts, in the kernel, so an unsampled trace costs no ring-buffer traffic
 * and its propagated traceparent says unsampled. traceidratio uses the Go SDK's rule on the trace ID, so a
 * gotel service and an SDK-instrumented one with the same ratio decide alike.
 */
export const SAMPLERS = [
  "always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** values of enum gotel_sampler_root */
const ROOT = { always_on: 0, always_off: 1, traceidratio: 2 } as const;
const EXTRACT = 1;
const INJECT = 2;
const SAME_HOST = 4;
const SOCKET = 8;

/** Go SDK: TraceIDRatioBased(f) samples when (big-endian trace_id[8:16]) >> 1 < uint64(f * 2^63). */
export function ratioBound(ratio: number): bigint {
  if (!(ratio > 0)) return 0n;
  if (ratio >= 1) return 1n << 63n;
  return BigInt(Math.floor(ratio * 2 ** 63));
}

/** Whether a trace ID (32 hex digits) is sampled at this ratio, exactly as the kernel decides it. */
export function ratioSampled(traceId: string, ratio: number): boolean {
  return BigInt(`0x${traceId.slice(16)}`) >> 1n < ratioBound(ratio);
}

export interface TraceSettings {
  sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG, for the ratio samplers */
  ratio: number;
  /** tracecontext is among OTEL_PROPAGATORS */
  tracecontext: boolean;
  /** and the kernel may write into the target (lockdown none) */
  injectAllowed: boolean;
  /** server spans may continue client spans of this host (src/propagation/same-host.ts is loaded) */
  sameHost?: boolean;
  /** plaintext HTTP/1 requests get traceparent inserted into their bytes (src/propagation/socket-traceparent.ts) */
  socket?: boolean;
}

/** The .rodata constants of every object that includes trace_context.h. */
export function traceConstants(s: TraceSettings): Record<string, bigint | number> {
  const parentBased = s.sampler.startsWith("parentbased_");
  const root = s.sampler.replace(/^parentbased_/, "") as keyof typeof ROOT;
  const always = root === "traceidratio" && s.ratio >= 1 ? "always_on" : root;
  return {
    gotel_sampler_root: ROOT[always],
    gotel_sampler_parent_based: parentBased ? 1 : 0,
    gotel_sampler_ratio_bound: ratioBound(s.ratio),
    gotel_propagation: s.tracecontext ? EXTRACT | (s.injectAllowed ? INJECT : 0) | (s.sameHost ? SAME_HOST : 0) | (s.socket ? SOCKET : 0) : 0,
  };
}
