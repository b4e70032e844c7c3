/**
 * eBPF objects loaded in threads of their own (BpfObject.openAndStartLoad, gotel_load_start in our libbpf): side
 * by side they load as one after another would, the verifier's rejection comes back with its log, and an object
 * closed while its thread still loads is waited for, not pulled from under it.
 */
import { beforeAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readEmbeddedObject } from "../../src/ebpf/assets.ts";
import { VerifierError } from "../../src/ebpf/errors.ts";
import { WRITES_USER_MEMORY } from "../../src/ebpf/kernel-checks.ts";
import { libbpf } from "../../src/ebpf/libbpf.ts";
import { BpfObject } from "../../src/ebpf/object.ts";
import { useCoreMaps } from "../../src/ebpf/shared-maps.ts";
import { ROOT } from "../support/go.ts";
import { requireRoot } from "../support/kernel.ts";

const REJECTED = join(ROOT, "build/test-bpf", process.arch, "rejected.bpf.o");
const openFds = () => readdirSync("/proc/self/fd").length;
const tasks = () => readdirSync("/proc/self/task").length;
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
      // this kernel may refuse bpf_probe_write_user (lockdown): the programs that call it are left out, as gotel does
      for (const p of o.programs.values()) p.autoload = !WRITES_USER_MEMORY.test(p.name);
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
