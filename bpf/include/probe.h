/* Defining a uprobe program once for both attach paths. A SEC() program cannot call another one, so the body
 * is a static inline function and this emits a classic `uprobe` and a `uprobe.multi` entry point for it;
 * user space turns autoload off for the variant it does not use (uprobe.multi needs kernel >= 6.6). */
#ifndef GOTEL_PROBE_H
#define GOTEL_PROBE_H

#include <bpf/bpf_helpers.h>

#define GOTEL_UPROBE(name, body)                                                              \
	SEC("uprobe") int name(struct pt_regs *ctx) { return body(ctx); }                      \
	SEC("uprobe.multi") int name##_multi(struct pt_regs *ctx) { return body(ctx); }

/* Struct field offsets arrive from user space per process; this marks a field the binary does not have. */
#define GOTEL_OFFSET_ABSENT ((__u64)-1)

#endif
