import { GotelError } from "../errors.ts";

/** Linux errno names for the values libbpf and the bpf() syscall actually return to us. */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 7: "E2BIG", 8: "ENOEXEC", 9: "EBADF",
  11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV",
  20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 34: "ERANGE", 38: "ENOSYS",
  95: "EOPNOTSUPP", 524: "ENOTSUPP",
  // libbpf's own error codes (libbpf.h, enum libbpf_errno)
  4000: "LIBBPF_ERRNO__LIBELF", 4001: "LIBBPF_ERRNO__FORMAT", 4002: "LIBBPF_ERRNO__KVERSION",
  4003: "LIBBPF_ERRNO__ENDIAN", 4004: "LIBBPF_ERRNO__INTERNAL", 4005: "LIBBPF_ERRNO__RELOC",
  4006: "LIBBPF_ERRNO__LOAD", 4007: "LIBBPF_ERRNO__VERIFY", 4008: "LIBBPF_ERRNO__PROG2BIG",
  4009: "LIBBPF_ERRNO__KVER", 4010: "LIBBPF_ERRNO__PROGTYPE", 4011: "LIBBPF_ERRNO__WRNGPID",
  4012: "LIBBPF_ERRNO__INVSEQ", 4013: "LIBBPF_ERRNO__NLPARSE",
};

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EAGAIN = 11;
export const EACCES = 13;
export const EINVAL = 22;
export const ENOSYS = 38;
export const EOPNOTSUPP = 95;
export const ENOTSUPP = 524;

export function errnoName(errno: number): string {
  return ERRNO_NAMES[Math.abs(errno)] ?? `errno ${Math.abs(errno)}`;
}

export const PRIVILEGE_HINT =
  "run gotel as root, or grant it CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (CAP_SYS_ADMIN on kernels before 5.8)";

/** What a user can do about an errno from a libbpf call, when there is something to say. */
function hintFor(errno: number): string | undefined {
  switch (Math.abs(errno)) {
    case EPERM:
    case EACCES:
      return PRIVILEGE_HINT;
    case ENOSYS:
      return "this kernel has no bpf() syscall for this (check `gotel doctor`)";
    default:
      return undefined;
  }
}

/**
 * A libbpf or bpf() call that failed. `call` names the C function, `subject` what it was called on
 * (an object, a program, a path and offset), `errno` is positive.
 */
export class BpfError extends GotelError {
  readonly errno: number;

  constructor(
    readonly call: string,
    errno: number,
    readonly subject: string,
    description: string,
    hint?: string,
  ) {
    const positive = Math.abs(errno);
    super(`${call} failed for ${subject}: ${description} (${errnoName(positive)})`, hint ?? hintFor(positive));
    this.name = "BpfError";
    this.errno = positive;
  }
}

/** The verifier refused a program. `log` is the kernel's verifier log for it, possibly empty. */
export class VerifierError extends GotelError {
  constructor(
    readonly objectName: string,
    readonly programName: string,
    readonly log: string,
    readonly errno: number,
  ) {
    super(
      `the kernel's verifier rejected program '${programName}' of ${objectName}` +
        (summarizeVerifierLog(log) ? `: ${summarizeVerifierLog(log)}` : ` (${errnoName(errno)})`),
      "set OTEL_GO_AUTO_SHOW_VERIFIER_LOG=true to print the full verifier log",
    );
    this.name = "VerifierError";
  }
}

/**
 * The line of a verifier log that says why it gave up: the last line that is not bookkeeping
 * ("processed N insns", "verification time", register-state dumps).
 */
export function summarizeVerifierLog(log: string): string {
  const lines = log
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .filter((l) => !/^(processed \d+ insns|verification time|stack depth|max_states_per_insn|-- (BEGIN|END) )/.test(l));
  return lines.at(-1) ?? "";
}
