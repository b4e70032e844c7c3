/**
 * The core object, then every instrumentation's object, each loaded once for the agent: the core owns the maps
 * all objects share (ring buffer, counters, span contexts), the instrumentations reuse them. Settings that the
 * kernel applies (sampling, propagation) are written into each object before load.
 */
import type { EnvConfig } from "../config/env.ts";
import { lockdownMode, probeWriteUserAllowed } from "../ebpf/kernel-checks.ts";
import type { AttachMode } from "../ebpf/link.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import { log } from "../log.ts";
import { traceConstants } from "../traces/sampling.ts";
import { CoreObject } from "./core-object.ts";
import type { Instrumentation } from "./instrumentation.ts";
import type { SpanProbe } from "./span-probe.ts";

export interface ProbeSet {
  /** owns the shared maps: the ring buffer ("events"), the counters ("drops"), the span contexts; their BTF */
  core: CoreObject;
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
  const core = CoreObject.load(base);
  const probes: SpanProbe[] = [];
  try {
    // event types from 2 (1 is the self-test's), by place in the list: bpf/include/event.h
    const first = Number(core.obj.btf().enumValues("gotel_event_type").get("GOTEL_EVENT_FIRST_INSTRUMENTATION"));
    if (!Number.isInteger(first)) throw new Error("core.bpf.o: no GOTEL_EVENT_FIRST_INSTRUMENTATION in its BTF");
    for (const [n, i] of instrumentations.entries()) {
      const object = { ...base, shareWith: core.obj, eventType: first + n };
      probes.push(i.load({ object, env, memory, inject: tracecontext && injectAllowed }));
    }
  } catch (e) {
    for (const p of probes.reverse()) p.close();
    core.close();
    throw e;
  }
  if (!tracecontext) log.info("trace context propagation is off (OTEL_PROPAGATORS has no tracecontext)");
  else if (!injectAllowed) {
    log.warn("outgoing requests will not carry traceparent: the kernel forbids bpf_probe_write_user", {
      lockdown: lockdownMode() ?? "unknown (securityfs not mounted)",
      hint: "spans are still produced, but services are not linked; boot with lockdown=none to allow it",
    });
  }
  return { core, probes };
}
