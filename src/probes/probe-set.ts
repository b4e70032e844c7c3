/**
 * Every instrumentation's object, loaded once for the agent: the net/http server object first (it owns the maps
 * all objects share: ring buffer, counters, span contexts), then the others reusing them. Settings that the
 * kernel applies (sampling, propagation) are written into each object before load.
 */
import type { EnvConfig } from "../config/env.ts";
import { lockdownMode, probeWriteUserAllowed } from "../ebpf/kernel-checks.ts";
import type { AttachMode } from "../ebpf/link.ts";
import { log } from "../log.ts";
import { traceConstants } from "../traces/sampling.ts";
import { DatabaseSqlProbe } from "./database-sql-probe.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import { NethttpClientProbe } from "./nethttp-client-probe.ts";
import { NethttpServerProbe } from "./nethttp-server-probe.ts";
import type { SpanProbe } from "./span-probe.ts";

export interface ProbeSet {
  /** the first one owns the shared maps */
  owner: NethttpServerProbe;
  probes: readonly SpanProbe[];
}

/** memory: a live target's memory and runtime type names (error.type, a database's driver, HTTP/2 writers) */
export function loadProbes(env: EnvConfig, mode: AttachMode, memory: (tgid: number) => TargetMemory | undefined): ProbeSet {
  const tracecontext = env.OTEL_PROPAGATORS.includes("tracecontext");
  const injectAllowed = probeWriteUserAllowed();
  const constants = traceConstants({ sampler: env.OTEL_TRACES_SAMPLER, ratio: env.OTEL_TRACES_SAMPLER_ARG, tracecontext, injectAllowed });
  const base = { mode, showVerifierLog: env.OTEL_GO_AUTO_SHOW_VERIFIER_LOG, constants };
  const owner = NethttpServerProbe.load({ ...base, memory });
  const shared = { ...base, shareWith: owner.object.obj };
  const probes: SpanProbe[] = [owner];
  try {
    probes.push(NethttpClientProbe.load({ ...shared, inject: tracecontext && injectAllowed, memory }));
    probes.push(DatabaseSqlProbe.load({
      ...shared, memory, includeText: env.OTEL_GO_AUTO_INCLUDE_DB_STATEMENT, parse: env.OTEL_GO_AUTO_PARSE_DB_STATEMENT,
    }));
  } catch (e) {
    for (const p of probes.reverse()) p.close();
    throw e;
  }
  if (!tracecontext) log.info("trace context propagation is off (OTEL_PROPAGATORS has no tracecontext)");
  else if (!injectAllowed) {
    log.warn("outgoing requests will not carry traceparent: the kernel forbids bpf_probe_write_user", {
      lockdown: lockdownMode() ?? "unknown (securityfs not mounted)",
      hint: "spans are still produced, but services are not linked; boot with lockdown=none to allow it",
    });
  }
  return { owner, probes };
}
