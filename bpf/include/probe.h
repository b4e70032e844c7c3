/* Defining a uprobe program once for both attach paths. A SEC() program cannot call another one, so the body
 * is a static inline function and this emits a classic `uprobe` and a `uprobe.multi` entry point for it;
 * user space turns autoload off for the variant it does not use (uprobe.multi needs kernel >= 6.6). */
#ifndef GOTEL_PROBE_H
#define GOTEL_PROBE_H

#include <bpf/bpf_helpers.h>

#include "go_types.h"

#define GOTEL_UPROBE(name, body)                                                              \
	SEC("uprobe") int name(struct pt_regs *ctx) { return body(ctx); }                      \
	SEC("uprobe.multi") int name##_multi(struct pt_regs *ctx) { return body(ctx); }

/* Struct field offsets arrive from user space per process; this marks a field the binary does not have. */
#define GOTEL_OFFSET_ABSENT ((__u64)-1)

/* The 8-byte field at base+offset; 0 when base is nil or the field is absent in this version. */
static __always_inline __u64 read_u64_at(__u64 base, __u64 offset)
{
	__u64 v = 0;
	if (base && offset != GOTEL_OFFSET_ABSENT)
		bpf_probe_read_user(&v, sizeof(v), (const void *)(base + offset));
	return v;
}

/* Copies the string field at base+offset into the char array dst and sets len, when both are there. */
#define READ_STRING_FIELD(dst, len, base, offset)                                         \
	do {                                                                              \
		if ((base) && (offset) != GOTEL_OFFSET_ABSENT)                            \
			len = go_read_string_at(dst, sizeof(dst), (base) + (offset));    \
	} while (0)

#endif
