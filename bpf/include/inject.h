/* Writing into the target (DESIGN.md decision 9): bpf_probe_write_user, which only objects loaded where the
 * kernel allows it carry (their programs are named `*_inject*`, src/ebpf/kernel-checks.ts).
 *
 * A test build (GOTEL_INJECT_DRY_RUN, test/fixtures/bpf/, a product object built with it) is for kernels that forbid the helper:
 * every write goes to the inject_writes ring buffer instead, so tests check its address and bytes.
 */
#ifndef GOTEL_INJECT_H
#define GOTEL_INJECT_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "event.h"
#include "trace_context.h"

#ifdef GOTEL_INJECT_DRY_RUN
struct inject_write {
	__u64 addr;
	__u32 size;
	__u32 pad;
	char bytes[1024];
};
GOTEL_BTF_TYPE(inject_write, struct inject_write);
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} inject_writes SEC(".maps");

static __always_inline long inject_write_user(void *dst, const void *src, __u32 size)
{
	struct inject_write *w = bpf_ringbuf_reserve(&inject_writes, sizeof(*w), 0);
	if (!w)
		return -1;
	w->addr = (__u64)dst;
	w->size = size;
	bpf_probe_read_kernel(w->bytes, size & 1023, src);
	bpf_ringbuf_submit(w, 0);
	return 0;
}
#else
#define inject_write_user bpf_probe_write_user
#endif

/* What an outgoing call's traceparent is made of, kept from its start until its headers are encoded. */
struct inject_context {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
	__u8 pad[7];
};

/* An HPACK literal header field without indexing, new name (RFC 7541 6.2.2): "traceparent: 00-…". Not indexed,
 * so the encoder's and the peer's dynamic tables stay as they were; valid anywhere after the pseudo-headers. */
#define INJECT_HPACK_LEN (1 + 1 + 11 + 1 + GOTEL_TRACEPARENT_LEN)

static __always_inline void inject_hpack_traceparent(char *l, const struct inject_context *sc)
{
	l[0] = 0;
	l[1] = 11;
	__builtin_memcpy(l + 2, "traceparent", 11);
	l[13] = GOTEL_TRACEPARENT_LEN;
	gotel_format_traceparent_of(l + 14, sc->trace_id, sc->span_id, &sc->flags);
}

#endif
