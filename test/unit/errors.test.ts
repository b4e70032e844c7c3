import { describe, expect, test } from "bun:test";
import { BpfError, errnoName, summarizeVerifierLog, VerifierError } from "../../src/ebpf/errors.ts";
import { retryInterrupted } from "../../src/ebpf/object.ts";

describe("errors", () => {
  test("errno names, including libbpf's own codes", () => {
    expect(errnoName(-3)).toBe("ESRCH");
    expect(errnoName(13)).toBe("EACCES");
    expect(errnoName(4007)).toBe("LIBBPF_ERRNO__VERIFY");
    expect(errnoName(999)).toBe("errno 999");
  });

  test("a BpfError is one line naming the call, the subject, the errno and what to do", () => {
    const e = new BpfError("bpf_object__load", -1, "selftest.bpf.o", "Operation not permitted");
    expect(e.errno).toBe(1);
    expect(e.oneLine).toBe(
      "bpf_object__load failed for selftest.bpf.o: Operation not permitted (EPERM); " +
        "run gotel as root, or grant it CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (CAP_SYS_ADMIN on kernels before 5.8)",
    );
    expect(e.oneLine).not.toContain("\n");
  });

  test("the verifier's reason is the last line that is not bookkeeping", () => {
    const log = [
      "0: R1=ctx() R10=fp0",
      "; buf[i] = 1;",
      "5: (73) *(u8 *)(r2 +0) = r1",
      "R2 unbounded memory access, make sure to bounds check any such access",
      "processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0",
      "",
    ].join("\n");
    expect(summarizeVerifierLog(log)).toBe("R2 unbounded memory access, make sure to bounds check any such access");
    const e = new VerifierError("rejected.bpf.o", "bad", log, 13);
    expect(e.oneLine).toBe(
      "the kernel's verifier rejected program 'bad' of rejected.bpf.o: R2 unbounded memory access, make sure to bounds " +
        "check any such access; set OTEL_GO_AUTO_SHOW_VERIFIER_LOG=true to print the full verifier log",
    );
  });
});

describe("a load the verifier could not finish for signals", () => {
  const interrupted = () => new BpfError("bpf_object__load", -11, "x.bpf.o", "the kernel's verifier was interrupted by signals on every attempt");
  test("is opened and loaded again, up to three times in all", () => {
    let calls = 0;
    expect(retryInterrupted(() => (++calls < 3 ? (() => { throw interrupted(); })() : "loaded"))).toBe("loaded");
    expect(calls).toBe(3);
    calls = 0;
    expect(() => retryInterrupted(() => { calls++; throw interrupted(); })).toThrow(/interrupted by signals/);
    expect(calls).toBe(3);
  });
  test("any other failure is not retried", () => {
    let calls = 0;
    expect(() => retryInterrupted(() => { calls++; throw new BpfError("bpf_object__load", -1, "x.bpf.o", "Operation not permitted"); })).toThrow(/EPERM/);
    expect(calls).toBe(1);
  });
});
