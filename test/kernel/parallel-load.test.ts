/**
 * eBPF objects loaded in threads of their own (BpfObject.openAndStartLoad, gotel_load_start in our libbpf): side
 * by side they load as one after another would, the verifier's rejection comes back with its log, and an object
 * closed while its thread still loads is waited for, not pulled from under it. Through the agent's planning
 * (planExecutable over loadProbes' probes): an instrumentation whose load fails in its thread is skipped with the
 * verifier's words, and the others are planned.
 */
import { beforeAll, expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { readEmbeddedObject } from "../../src/ebpf/assets.ts";
import { VerifierError } from "../../src/ebpf/errors.ts";
import { WRITES_USER_MEMORY } from "../../src/ebpf/kernel-checks.ts";
import { libbpf } from "../../src/ebpf/libbpf.ts";
import { BpfObject } from "../../src/ebpf/object.ts";
import { useCoreMaps } from "../../src/ebpf/shared-maps.ts";
import { readEnv } from "../../src/config/env.ts";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { INSTRUMENTATIONS } from "../../src/instrumentations/index.ts";
import type { Instrumentation } from "../../src/probes/instrumentation.ts";
import { planExecutable } from "../../src/probes/executable-plans.ts";
import { loadProbes } from "../../src/probes/probe-set.ts";
import { buildGoFixture, ROOT } from "../support/go.ts";
import { requireRoot } from "../support/kernel.ts";

const REJECTED = join(ROOT, "build/test-bpf", process.arch, "rejected.bpf.o");
const openFds = () => readdirSync("/proc/self/fd").length;
/** the fds of eBPF maps, programs and links */
const bpfFds = () => readdirSync("/proc/self/fd").filter((f) => {
  try {
    return readlinkSync(`/proc/self/fd/${f}`).startsWith("anon_inode:bpf");
  } catch {
    return false; // the directory's own fd, gone by now
  }
}).length;
const tasks = () => readdirSync("/proc/self/task").length;
/** threads named as the JS thread: a loading thread inherits its name, Bun's own helpers have theirs */
const unnamedThreads = () => {
  const main = readFileSync("/proc/self/comm", "utf8");
  return readdirSync("/proc/self/task").filter((t) => readFileSync(`/proc/self/task/${t}/comm`, "utf8") === main).length;
};
/** the kernel's id of the map behind an fd (reused maps are dup-ed fds of one map) */
const mapId = (fd: number) => /^map_id:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))?.[1];

beforeAll(() => {
  requireRoot();
  libbpf(); // its memfd stays open for the process's life: open it before counting fds
});

/** the programs' fds of a loaded object: one per program whose autoload is on */
function programFds(obj: BpfObject): number[] {
  return [...obj.programs.values()].filter((p) => p.autoload).map((p) => p.fd);
}

test("two instrumentations' objects load side by side, each with every program the kernel accepted", () => {
  const fds = openFds();
  const core = BpfObject.openAndLoad(readEmbeddedObject("core"), { name: "core.bpf.o" }, () => {});
  const pending = ["nethttp_server", "nethttp_client"].map((name) =>
    BpfObject.openAndStartLoad(readEmbeddedObject(name), { name: `${name}.bpf.o` }, (o) => {
      // one attach mode, as gotel loads them (the programs of both cannot share a prog array); this kernel may
      // refuse bpf_probe_write_user (lockdown): the programs that call it are left out, as gotel does
      for (const p of o.programs.values()) p.autoload = !p.section.startsWith("uprobe.multi") && !WRITES_USER_MEMORY.test(p.name);
      useCoreMaps(o, core);
    }),
  );
  const loaded = pending.map((p) => p.finish());
  for (const obj of loaded) {
    const progs = programFds(obj);
    expect(progs.length).toBeGreaterThan(5);
    for (const fd of progs) expect(fd).toBeGreaterThan(2);
    // they share the core's ring buffer: the same kernel map behind both fds
    expect(mapId(obj.map("events").fd)).toBe(mapId(core.map("events").fd));
  }
  for (const obj of loaded) obj.close();
  core.close();
  expect(openFds()).toBe(fds);
});

test("a program the verifier rejects in a loading thread: its error names it, with the verifier's reason", () => {
  const fds = openFds();
  const pending = BpfObject.openAndStartLoad(new Uint8Array(readFileSync(REJECTED)), { name: "rejected.bpf.o" }, () => {});
  let error: unknown;
  try {
    pending.finish();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(VerifierError);
  const v = error as VerifierError;
  expect(v.oneLine).toMatch(/^the kernel's verifier rejected program 'rejected_unbounded_index' of rejected\.bpf\.o: /);
  // the log the thread kept came back whole: the instructions the verifier walked, and its last word
  expect(v.log).toContain("math between fp pointer and register with unbounded min value is not allowed");
  expect(v.log).toMatch(/^processed \d+ insns/m);
  expect(openFds()).toBe(fds);
});

test("a use that waits for a rejected load gets the verifier's error, and so does the wait for the load after it", () => {
  const fds = openFds();
  const pending = BpfObject.openAndStartLoad(new Uint8Array(readFileSync(REJECTED)), { name: "rejected.bpf.o" }, () => {});
  const program = [...pending.object.programs.values()][0]!;
  expect(() => program.fd).toThrow(VerifierError);
  expect(() => pending.finish()).toThrow(VerifierError);
  expect(openFds()).toBe(fds);
});

test("an object closed while its thread still loads it is waited for, then closed", () => {
  const fds = openFds();
  const core = BpfObject.openAndLoad(readEmbeddedObject("core"), { name: "core.bpf.o" }, () => {});
  const obj = BpfObject.open(readEmbeddedObject("nethttp_server"), { name: "nethttp_server.bpf.o" });
  useCoreMaps(obj, core);
  const threads = tasks();
  obj.startLoad();
  // its verifier takes tens of ms: the loading thread is there now (not a load done here instead)
  expect(tasks()).toBeGreaterThan(threads);
  obj.close();
  expect(tasks()).toBe(threads);
  core.close();
  expect(openFds()).toBe(fds);
});

test("planned side by side: an instrumentation whose object fails to load in its thread is skipped with the verifier's words, the others are ready", async () => {
  const fds = bpfFds(); // the logger may open a stderr of its own meanwhile
  const server = INSTRUMENTATIONS.find((i) => i.name === "net/http server")!;
  const client = INSTRUMENTATIONS.find((i) => i.name === "net/http client")!;
  // the server's load also starts a load the verifier rejects, in the same side-by-side set as its own object
  const failing: Instrumentation = {
    ...server,
    load: (ctx) => {
      BpfObject.openAndLoad(new Uint8Array(readFileSync(REJECTED)), { name: "rejected.bpf.o" }, () => {});
      return server.load(ctx);
    },
  };
  const env = readEnv({ GOTEL_SAME_HOST_LINKING: "false", GOTEL_SOCKET_TRACEPARENT: "false" });
  const set = loadProbes(env, "classic", () => undefined, [failing, client]);
  const bin = buildGoFixture("http-chain", { goVersion: "1.27.4" });
  const exe = GoExecutable.open(bin);
  const target = Bun.spawn([bin, "backend", "127.0.0.1:0"], { stdout: "ignore", stderr: "ignore" });
  try {
    const plans = planExecutable(exe, set.probes);
    expect(unnamedThreads()).toBe(1); // every loading thread joined
    expect(plans.skipped.filter((s) => !s.absent).map((s) => [s.probe.name, s.reason])).toEqual([[
      "net/http server",
      expect.stringMatching(/^its eBPF object nethttp_server\.bpf\.o could not be loaded: the kernel's verifier rejected program 'rejected_unbounded_index' of rejected\.bpf\.o: /),
    ]]);
    expect(plans.ready.map((r) => r.probe.name)).toEqual(["net/http client"]);
    // the client's object, loaded in its thread, attaches to a process of that executable
    const links = plans.ready[0]!.prepared.attach(target.pid, bin);
    expect(links.length).toBeGreaterThan(0);
    for (const l of links) l.destroy();
  } finally {
    target.kill();
    await target.exited;
    exe.close();
    for (const p of set.probes) p.close();
    set.core.close();
  }
  expect(bpfFds()).toBe(fds);
});
