/**
 * The contract every instrumentation implements (src/instrumentations/<name>/, registered in
 * src/instrumentations/index.ts). Without loading anything, it says whether it would attach to an executable and
 * which struct fields it reads (inspect, the offsets generator); loaded, it is a SpanProbe (span-probe.ts): it
 * prepares and attaches per process, turns its events into spans, ends what a dead process left in flight, and
 * forgets a process.
 */
import type { EnvConfig } from "../config/env.ts";
import type { GoExecutable } from "../gobin/analyze.ts";
import type { TargetMemory } from "../gobin/runtime-types.ts";
import type { FieldsProgram } from "../offsets/fields-program.ts";
import type { FieldNeed, OffsetsSource } from "../offsets/resolver.ts";
import type { LoadOptions } from "./probe-object.ts";
import type { SameHostRole } from "../propagation/same-host.ts";
import type { SpanProbe } from "./span-probe.ts";

export interface Readiness {
  status: "ready" | "skipped";
  /** why it is skipped, or what it will probe */
  reason: string;
  offsetsSource?: OffsetsSource;
  /** table-interpolated: which built versions of the table stood in for the binary's */
  offsetsNote?: string;
}

/** What an instrumentation gets when it is loaded. */
export interface LoadContext {
  /** attach mode, verifier log, .rodata constants, and the object that owns the shared maps */
  object: LoadOptions;
  env: EnvConfig;
  /** a live target's memory and runtime type names (error.type, a database's driver, HTTP/2 writers) */
  memory: (tgid: number) => TargetMemory | undefined;
  /** traceparent may be written into outgoing requests: propagation is on and the kernel allows it */
  inject: boolean;
  /** gotel may write into processes with bpf_probe_write_user: the kernel allows it and GOTEL_WRITE_TRACEPARENT is on */
  writeAllowed: boolean;
  /** clients file the spans of the HTTP/1 requests they send, for the connection tracepoint
   * (src/propagation/same-host.ts): same-host linking or socket insertion is on */
  fileRequests: boolean;
  /** gRPC clients file their calls' streams for same-host linking (it is on) */
  linkStreams: boolean;
}

export interface Instrumentation {
  /** e.g. "net/http server" */
  name: string;
  /** the module the instrumented package belongs to ("std" for the standard library) */
  module: string;
  /** the same library under the paths it had before (github.com/Shopify/sarama for IBM/sarama) */
  formerModules?: readonly string[];
  /** its eBPF object: `<object>.bpf.c` in its folder, embedded as `<object>` */
  object: string;
  /** whether it would attach to this executable, and why not */
  readiness(exe: GoExecutable): Readiness;
  /** the executable has the code it instruments at all: its object is loaded for the first one that does */
  present(exe: GoExecutable): boolean;
  /** the struct fields it reads, of the standard library and of other modules */
  needs: readonly FieldNeed[];
  /** for a third-party module's fields: the programs the offsets generator builds to see them (one per module;
   * entries that share a module may both list it) */
  fieldsPrograms?: readonly FieldsProgram[];
  /** loads its object (once per agent) */
  load(ctx: LoadContext): SpanProbe;
  /** its part in same-host linking: the kernel looks at a traced process's socket writes, or reads, only where an
   * attached instrumentation needs them */
  sameHost?: readonly SameHostRole[];
  /** its own reasons for losing spans, counted in the kernel */
  losses?: Losses;
}

/**
 * An instrumentation's own reasons for losing spans: an enum of its C (counted with gotel_count_own, bpf/include/
 * event.h; the enum kept in BTF), each member with the words the `stopped` line and the warnings say. The same
 * words from several instrumentations are one reason (kafka-go's and Sarama's batches). Losses found in user space
 * use the same words: an UnreadableSpanError's reason, what a sweep gave up on.
 */
export interface Losses {
  /** the enum's name in its object's BTF */
  enum: string;
  /** enum member -> the reason, in words */
  reasons: Readonly<Record<string, string>>;
}

export type { OffsetsSource };

/** Every module path an instrumentation instruments: its module and its former names. */
export function modulesOf(i: Pick<Instrumentation, "module" | "formerModules">): readonly string[] {
  return i.formerModules ? [i.module, ...i.formerModules] : [i.module];
}

/** Whether the executable links the library an instrumentation instruments, under any of its names. */
export function linksModuleOf(exe: GoExecutable, i: Pick<Instrumentation, "module" | "formerModules">): boolean {
  return modulesOf(i).some((m) => exe.moduleVersion(m) !== undefined);
}
