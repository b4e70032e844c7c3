import { describe, expect, test } from "bun:test";
import { effectiveCapabilities, lockdownMode } from "../../src/ebpf/kernel-checks.ts";
import { kernelAtLeast, kernelVersion } from "../../src/ebpf/kernel-version.ts";

describe("doctor's parsers", () => {
  test("kernel release strings", () => {
    expect(kernelVersion("6.18.44-fc-v657")).toEqual([6, 18, 44]);
    expect(kernelVersion("5.8.0-63-generic")).toEqual([5, 8, 0]);
    expect(kernelVersion("6.6")).toEqual([6, 6, 0]);
    expect(kernelVersion("weird")).toBeUndefined();
    expect([kernelAtLeast(6, 1, "6.1.0-27-amd64"), kernelAtLeast(6, 1, "5.10.0-33-amd64"), kernelAtLeast(6, 1, "7.0"), kernelAtLeast(6, 1, "weird")]).toEqual([true, false, true, false]);
  });

  test("lockdown mode is the bracketed one", () => {
    expect(lockdownMode("[none] integrity confidentiality\n")).toBe("none");
    expect(lockdownMode("none [integrity] confidentiality\n")).toBe("integrity");
  });

  test("effective capabilities from /proc/<pid>/status", () => {
    expect(effectiveCapabilities("CapEff:\t000001ffffffffff\n")).toEqual(new Set(["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_PERFMON", "CAP_BPF"]));
    expect(effectiveCapabilities("CapEff:\t0000000000000000\n")).toEqual(new Set());
    // CAP_BPF (39) and CAP_PERFMON (38) only
    expect(effectiveCapabilities("CapEff:\t000000c000000000\n")).toEqual(new Set(["CAP_PERFMON", "CAP_BPF"]));
  });
});
