import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { EnvConfig } from "../config/env.ts";
import { assetArch } from "../ebpf/assets.ts";
import { runChecks, type Check } from "../ebpf/kernel-checks.ts";
import { libbpf } from "../ebpf/libbpf.ts";
import { GotelError } from "../errors.ts";
import { INSTRUMENTATIONS } from "../instrumentations/index.ts";
import { CoreObject } from "../probes/core-object.ts";
import { SAME_HOST_OBJECT, SameHostLinking } from "../propagation/same-host.ts";
import { SOCKET_TRACEPARENT_OBJECTS, SocketTraceparent } from "../propagation/socket-traceparent.ts";
import { GOTEL_VERSION } from "../version.ts";
import { parseFlags } from "./usage.ts";

const MARK: Record<Check["status"], string> = { ok: "ok  ", warn: "warn", fail: "FAIL", skip: "skip" };

function readObjectFile(path: string): { name: string; bytes: Uint8Array } {
  try {
    return { name: basename(path), bytes: new Uint8Array(readFileSync(path)) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new GotelError(`cannot read eBPF object ${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message}`,
      "pass the path of a .o file built with clang -target bpf");
  }
}

/** A way of linking services without writing into processes; the agent uses them only where writing is refused. */
interface LinkingPath {
  name: string;
  /** its switch, e.g. GOTEL_SAME_HOST_LINKING */
  setting: string;
  wanted: boolean;
  what: string;
  /** loads and attaches its programs with a core object, as the agent does, and closes them */
  tryStart(core: CoreObject): void;
}

/** Whether a linking path's programs load and attach here. */
function checkPath(p: LinkingPath, showVerifierLog: boolean, writing: boolean): Check {
  try {
    const core = CoreObject.load({ showVerifierLog });
    try {
      p.tryStart(core);
    } finally {
      core.close();
    }
    const why = !p.wanted ? ` but off (${p.setting}=false)` : writing ? " but not used: traceparent is written here, which links HTTP/1 requests already" : "";
    return { name: p.name, required: false, status: p.wanted || writing ? "ok" : "warn", detail: `available${why}: ${p.what}, nothing written into any process` };
  } catch (e) {
    return { name: p.name, required: false, status: "warn", detail: `not available: ${e instanceof GotelError ? e.message : String(e)}`, ...(e instanceof GotelError && e.hint ? { hint: e.hint } : {}) };
  }
}

function linkingPaths(env: EnvConfig, showVerifierLog: boolean): LinkingPath[] {
  return [
    {
      name: "socket insertion", setting: "GOTEL_SOCKET_TRACEPARENT", wanted: env.GOTEL_SOCKET_TRACEPARENT,
      what: "plaintext HTTP/1 requests of traced processes carry traceparent, inserted into their bytes as sockets send them",
      tryStart: (core) => SocketTraceparent.start(core.obj, { showVerifierLog }).close(),
    },
    {
      name: "same-host linking", setting: "GOTEL_SAME_HOST_LINKING", wanted: env.GOTEL_SAME_HOST_LINKING,
      what: "server spans continue the client spans of traced processes on this host (HTTP/1, HTTP/2, gRPC)",
      tryStart: (core) => SameHostLinking.start(core.obj, { showVerifierLog, uses: { link: true, insert: false } }).close(),
    },
  ];
}

export function doctorCommand(args: string[], env: EnvConfig): number {
  const { values } = parseFlags(args, { object: { type: "string", multiple: true } });
  const objectFiles = (values.object ?? []).map(readObjectFile);
  console.log(`gotel ${GOTEL_VERSION}, libbpf ${libbpf().version}, linux/${assetArch}`);
  const showVerifierLog = env.OTEL_GO_AUTO_SHOW_VERIFIER_LOG;
  const checks = runChecks({
    showVerifierLog, objectFiles, optionalObjects: [SAME_HOST_OBJECT, ...SOCKET_TRACEPARENT_OBJECTS],
    instrumentations: [{ name: "shared by every instrumentation", object: "core" }, ...INSTRUMENTATIONS],
  });
  const propagation = checks.findIndex((c) => c.name === "context propagation");
  const ready = checks.every((c) => !c.required || c.status === "ok");
  const writing = checks[propagation]?.status === "ok" && env.GOTEL_WRITE_TRACEPARENT;
  checks.splice(propagation + 1, 0, ...linkingPaths(env, showVerifierLog).map((p): Check => ready
    ? checkPath(p, showVerifierLog, writing)
    : { name: p.name, required: false, status: "skip", detail: "skipped: needs the checks above to pass" }));
  const width = Math.max(...checks.map((c) => c.name.length));
  for (const c of checks) {
    console.log(`  ${MARK[c.status]}  ${c.name.padEnd(width)}  ${c.detail}${c.hint && c.status !== "ok" ? ` — ${c.hint}` : ""}`);
  }
  const failed = checks.filter((c) => c.required && c.status !== "ok");
  console.log(failed.length === 0
    ? "gotel can run here"
    : `gotel cannot run here: ${failed.map((c) => c.name).join(", ")} failed`);
  return failed.length === 0 ? 0 : 1;
}
