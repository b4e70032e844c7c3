/**
 * Every instrumentation's object, loaded once for the agent, in the order of the list: the first owns the maps
 * all objects share (ring buffer, counters, span contexts), the others reuse them. Settings that the kernel
 * applies (sampling, propagation) are written into each object before load.
 */
import type { EnvConfig } from "../config/env.ts";
import { lockdownMode, probeWriteUserAllowed } from "../ebpf/kernel-checks.ts";
import type { AttachMode } from "../ebpf/link.ts";
import type { BpfObject } from "../ebpf/object.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import { log } from "../log.ts";
import { traceConstants } from "../traces/sampling.ts";
import type { Instrumentation } from "./instrumentation.ts";
import type { SpanProbe } from "./span-probe.ts";

export interface ProbeSet {
  /** the object that owns the shared maps: the ring buffer ("events"), the counters ("drops"), their BTF */
  shared: BpfObject;
  probes: readonly SpanProbe[];
}

/** memory: a live target's memory and runtime type names (error.type, a database's driver, HTTP/2 writers) */
export function loadProbes(
  env: EnvConfig,
  mode: AttachMode,
  memory: (tgid: number) => TargetMemory | undefined,
  instrumentations: readonly Instrumentation[],
): ProbeSet {
  const tracecontext = env.OTEL_PROPAGATORS.includes("tracecontext");
  const injectAllowed = probeWriteUserAllowed();
  const constants = traceConstants({ sampler: env.OTEL_TRACES_SAMPLER, ratio: env.OTEL_TRACES_SAMPLER_ARG, tracecontext, injectAllowed });
  const base = { mode, showVerifierLog: env.OTEL_GO_AUTO_SHOW_VERIFIER_LOG, constants };
  const probes: SpanProbe[] = [];
  let shared: BpfObject | undefined;
  try {
    for (const i of instrumentations) {
      const probe = i.load({ object: { ...base, shareWith: shared }, env, memory, inject: tracecontext && injectAllowed });
      shared ??= probe.object.obj;
      probes.push(probe);
    }
  } catch (e) {
    for (const p of probes.reverse()) p.close();
    throw e;
  }
  if (!shared) throw new Error("loadProbes: no instrumentation to load");
  if (!tracecontext) log.info("trace context propagation is off (OTEL_PROPAGATORS has no tracecontext)");
  else if (!injectAllowed) {
    log.warn("outgoing requests will not carry traceparent: the kernel forbids bpf_probe_write_user", {
      lockdown: lockdownMode() ?? "unknown (securityfs not mounted)",
      hint: "spans are still produced, but services are not linked; boot with lockdown=none to allow it",
    });
  }
  return { shared, probes };
}
