/**
 * Load the self-test object, attach its uprobe to a function of a real Go program, call that function and
 * read the events back from the ring buffer — through the classic and the uprobe.multi attach paths.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { BpfError } from "../../src/ebpf/errors.ts";
import { uprobeMultiSupported, type AttachMode } from "../../src/ebpf/link.ts";
import { liveRoundTrip, SelftestProbe } from "../../src/ebpf/selftest.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { libbpf } from "../../src/ebpf/libbpf.ts";
import { buildGoFixture } from "../support/go.ts";
import { LineProcess, requireRoot, waitFor } from "../support/kernel.ts";

let exe: string;

/** This process's open file descriptors (prog, map, link and perf-event fds included). */
function openFds(): string[] {
  return readdirSync("/proc/self/fd").sort();
}
let targetOffset: bigint;

beforeAll(() => {
  requireRoot();
  exe = buildGoFixture("uprobe-target");
  const elf = ElfFile.parse(new Uint8Array(readFileSync(exe)), exe);
  const sym = elf.symbols().find((s) => s.name === "main.gotelTarget");
  if (!sym) throw new Error("main.gotelTarget not found in the fixture");
  targetOffset = BigInt(elf.fileOffset(sym.value)!);
  libbpf(); // its memfd stays open for the process's life: open it before counting fds
});

const modes: AttachMode[] = ["classic", "multi"];

describe.each(modes)("uprobe on a Go function (%s attach)", (mode) => {
  let probe: SelftestProbe | undefined;
  let target: LineProcess | undefined;
  let bystander: LineProcess | undefined;
  afterAll(() => {
    probe?.close();
    target?.kill();
    bystander?.kill();
  });

  test("events carry the Go argument registers, the rewritten constant and the per-process map value", async () => {
    if (mode === "multi" && !uprobeMultiSupported()) {
      // `gotel doctor` reports this kernel feature as missing; the classic path is what runs here
      console.warn("uprobe.multi is not supported by this kernel (see gotel doctor): multi attach not exercised");
      return;
    }
    target = new LineProcess([exe]);
    bystander = new LineProcess([exe]);
    expect(await waitFor(() => target!.lines[0] === "ready" && bystander!.lines[0] === "ready")).toBe(true);

    const magic = 0x5eed_0000_1234n;
    const fdsBefore = openFds();
    probe = SelftestProbe.load(mode, { magic });
    probe.startReading();
    probe.setProcessTag(target.pid, 77n);
    const links = probe.attach({ path: exe, offsets: [targetOffset], pid: target.pid });
    expect(links.mode).toBe(mode);

    expect(await target.call("7 11")).toBe("32");
    // the bystander runs the same code but is not the attached pid: no events from it
    expect(await bystander.call("5 5")).toBe("20");
    for (const [a, b] of [[1, 2], [1000000, -3], [42, 0]]) await target.call(`${a} ${b}`);
    // delivered by the reader's timer, no explicit drain
    expect(await waitFor(() => probe!.events.length >= 4, 2000)).toBe(true);
    await Bun.sleep(50);

    const events = probe.events;
    expect(events.map((e) => [e.goArg1, BigInt.asIntN(64, e.goArg2)])).toEqual([[7n, 11n], [1n, 2n], [1000000n, -3n], [42n, 0n]]);
    for (const e of events) {
      expect(e.type).toBe(probe.eventType);
      expect(e.tgid).toBe(target.pid);
      expect(e.magic).toBe(magic);
      expect(e.processTag).toBe(77n);
      expect(e.goroutine).not.toBe(0n);
      expect(e.startNs).toBeGreaterThan(0n);
    }
    // goroutine pointer is stable for the main goroutine's calls
    expect(new Set(events.map((e) => e.goroutine)).size).toBe(1);
    expect(probe.kernelDrops()).toBe(0n);

    // teardown: every kernel object is released and the target keeps working, unprobed
    probe.close();
    probe = undefined;
    // none left that the probe opened (an fd of the test process itself may close meanwhile: a finished child's pipe)
    expect(openFds().filter((fd) => !fdsBefore.includes(fd))).toEqual([]);
    expect(await target.call("2 2")).toBe("8");
  });
});

describe("attach errors", () => {
  test("a pid that does not exist is a BpfError naming the call, pid and hint", () => {
    const probe = SelftestProbe.load("classic", { magic: 1n });
    try {
      let err: unknown;
      try {
        probe.attach({ path: exe, offsets: [targetOffset], pid: 999_999_9 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BpfError);
      const e = err as BpfError;
      expect(e.errno).toBe(3);
      expect(e.oneLine).toBe(
        `bpf_program__attach_uprobe_opts failed for program 'selftest_uprobe' at ${exe} (offset 0x${targetOffset.toString(16)}, pid 9999999): ` +
          "No such process (ESRCH); process 9999999 does not exist (or has exited); check the pid",
      );
    } finally {
      probe.close();
    }
  });

  test("a path that does not exist is a BpfError with ENOENT", () => {
    const probe = SelftestProbe.load("classic", { magic: 1n });
    try {
      let err: unknown;
      try {
        probe.attach({ path: "/nonexistent/program", offsets: [0x1000n] });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BpfError);
      expect((err as BpfError).oneLine).toBe(
        "bpf_program__attach_uprobe_opts failed for program 'selftest_uprobe' at /nonexistent/program (offset 0x1000): " +
          "No such file or directory (ENOENT); check that /nonexistent/program exists and is readable",
      );
    } finally {
      probe.close();
    }
  });
});

describe("doctor's live round trip in this process", () => {
  test.each(modes)("%s", (mode) => {
    if (mode === "multi" && !uprobeMultiSupported()) return console.warn("uprobe.multi not supported here (see gotel doctor)");
    const r = liveRoundTrip(mode);
    expect(r.mode).toBe(mode);
    expect(r.latencyUs).toBeGreaterThan(0);
  });
});
