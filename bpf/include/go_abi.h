/* Go's register ABI (ABIInternal, Go >= 1.17 on amd64, >= 1.18 on arm64) as seen from a uprobe.
 *
 * Integer arguments: amd64 RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11; arm64 X0..X15.
 * The current goroutine (runtime.g pointer) lives in R14 (amd64) / X28 (arm64) inside Go code.
 * A string takes two words (ptr, len), an interface two (itab/type, data), a slice three.
 *
 * The register frame handed to a uprobe is the UAPI-stable user register layout, so it is declared here
 * instead of being taken from vmlinux BTF: the objects then need no kernel type information at all.
 */
#ifndef GOTEL_GO_ABI_H
#define GOTEL_GO_ABI_H

#include <linux/types.h>

/* Only ever used as an opaque pointer: the program context of a uprobe. */
struct pt_regs;

#if defined(__TARGET_ARCH_x86)
struct gotel_user_regs {
	__u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	__u64 ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct gotel_user_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#else
#error "define __TARGET_ARCH_x86 or __TARGET_ARCH_arm64"
#endif

#define GOTEL_REGS(ctx) ((const struct gotel_user_regs *)(ctx))

/* The n-th integer argument word (1-based) of a Go function, at its entry. n must be a constant. */
static __always_inline __u64 go_arg(const void *ctx, const int n)
{
	const struct gotel_user_regs *r = GOTEL_REGS(ctx);
#if defined(__TARGET_ARCH_x86)
	switch (n) {
	case 1: return r->ax;
	case 2: return r->bx;
	case 3: return r->cx;
	case 4: return r->di;
	case 5: return r->si;
	case 6: return r->r8;
	case 7: return r->r9;
	case 8: return r->r10;
	case 9: return r->r11;
	default: return 0;
	}
#else
	return (n >= 1 && n <= 16) ? r->regs[n - 1] : 0;
#endif
}

/* The n-th integer argument of a C function (SysV / AAPCS64), for probes on non-Go code such as our own
 * trigger function in doctor's round trip. */
static __always_inline __u64 c_arg(const void *ctx, const int n)
{
	const struct gotel_user_regs *r = GOTEL_REGS(ctx);
#if defined(__TARGET_ARCH_x86)
	switch (n) {
	case 1: return r->di;
	case 2: return r->si;
	case 3: return r->dx;
	case 4: return r->cx;
	case 5: return r->r8;
	case 6: return r->r9;
	default: return 0;
	}
#else
	return (n >= 1 && n <= 8) ? r->regs[n - 1] : 0;
#endif
}

/* The runtime.g pointer of the goroutine executing the probed Go function. Entry and return events are
 * matched by it: goroutines migrate between threads, so thread ids are no key. */
static __always_inline __u64 go_goroutine(const void *ctx)
{
#if defined(__TARGET_ARCH_x86)
	return GOTEL_REGS(ctx)->r14;
#else
	return GOTEL_REGS(ctx)->regs[28];
#endif
}

/* A closure's context (its captured variables follow the code pointer) at the closure's entry: Go's REGCTXT. */
static __always_inline __u64 go_closure_context(const void *ctx)
{
#if defined(__TARGET_ARCH_x86)
	return GOTEL_REGS(ctx)->dx;
#else
	return GOTEL_REGS(ctx)->regs[26];
#endif
}

static __always_inline __u64 go_stack_pointer(const void *ctx)
{
	return GOTEL_REGS(ctx)->sp;
}

#endif
