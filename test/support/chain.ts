/** Services that call each other (test/fixtures/http-chain) under one `gotel run`, for the distributed-trace tests. */
import type { Collector, ReceivedSpan } from "./collector.ts";
import { GOTEL, runCommand } from "./cli.ts";
import { buildGoFixture } from "./go.ts";
import { Proc, startServer } from "./processes.ts";

/**
 * Whether this kernel lets gotel write traceparent into requests, as `gotel doctor` reports it (lockdown
 * "integrity" — the mode of the VMs we test on — forbids bpf_probe_write_user).
 */
const doctor = runCommand([GOTEL, "doctor"]).stdout.split("\n");
const doctorLine = doctor.find((l) => l.includes("context propagation")) ?? "";
const sameHostLine = doctor.find((l) => l.includes("same-host linking")) ?? "";
const socketLine = doctor.find((l) => l.includes("socket insertion")) ?? "";
export const INJECTION = /^\s*ok\s/.test(doctorLine);
/** where gotel may not write into processes, plaintext HTTP/1 requests carry traceparent inserted into their bytes */
export const SOCKET = !INJECTION && /^\s*ok\s/.test(socketLine);
/** A's plaintext HTTP/1 requests carry its client span's traceparent on the wire: written or inserted */
export const ON_THE_WIRE = INJECTION || SOCKET;
/** A and B are on one host and traced by one gotel: B's spans continue A's through their connection (HTTP/1) */
export const SAME_HOST = /^\s*ok\s/.test(sameHostLine);
/** B's server spans are the children of A's client spans: by the header gotel writes, or through the connection */
export const LINKED = ON_THE_WIRE || SAME_HOST;
if (!INJECTION) console.log(`traceparent injection is off on this kernel; gotel doctor: ${doctorLine.trim()}`);
if (!LINKED) console.log(`services are not linked on this kernel, so cross-process links are not asserted; gotel doctor: ${sameHostLine.trim()}`);

export interface Chain {
  exe: string;
  a: Awaited<ReturnType<typeof startServer>>;
  b: Awaited<ReturnType<typeof startServer>>;
  gotel: Proc;
}

/** B, then A calling B, then `gotel run --exe` following every process of the executable. */
export async function startChain(collector: Collector, goVersion: string, env: Record<string, string> = {}): Promise<Chain> {
  const exe = buildGoFixture("http-chain", { goVersion });
  const b = await startServer(exe, ["backend", "127.0.0.1:0"]);
  const a = await startServer(exe, ["frontend", "127.0.0.1:0", b.base]);
  const gotel = new Proc([GOTEL, "run", "--exe", exe], {
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_BSP_MAX_QUEUE_SIZE: "20000", ...env,
  });
  try {
    await gotel.waitForLine(new RegExp(`attached pid=${a.proc.pid} .*net/http client`), 20_000);
    await gotel.waitForLine(new RegExp(`attached pid=${b.proc.pid} .*net/http client`), 20_000);
  } catch (e) {
    await stopChain({ exe, a, b, gotel }, "SIGKILL"); // a failed beforeAll runs no afterAll
    throw e;
  }
  return { exe, a, b, gotel };
}

export async function stopChain(c: Chain | undefined, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  await c?.gotel.stop(signal);
  await c?.a.proc.stop();
  await c?.b.proc.stop();
}

export const pidOf = (s: ReceivedSpan): number => Number(s.resource["process.pid"]);

/** n random bytes as lowercase hex: trace and span IDs for traceparent headers */
export const randomHex = (bytes: number): string =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
