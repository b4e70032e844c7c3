/* Self-test probe: used by `gotel doctor` for its live uprobe round trip and by the kernel tests.
 *
 * It reports the first two Go argument registers, the first C argument register, a .rodata constant set by
 * user space before load, and a per-process value user space put into a hash map keyed by tgid — so one
 * round trip proves attach, register access, constant rewriting, map updates and ring-buffer delivery.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "event.h"

char LICENSE[] SEC("license") = "GPL";

/* Rewritten by user space after open, before load. */
volatile const __u64 selftest_magic = 0;

struct selftest_event {
	struct gotel_event_header hdr;
	__u64 go_arg1;
	__u64 go_arg2;
	__u64 c_arg1;
	__u64 magic;
	__u64 process_tag; /* from selftest_processes[tgid], 0 when absent */
};

GOTEL_BTF_TYPE(selftest_event, struct selftest_event);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} selftest_processes SEC(".maps");

static __always_inline int selftest_report(const void *ctx)
{
	struct selftest_event e = {};
	gotel_fill_header(&e.hdr, GOTEL_EVENT_SELFTEST, go_goroutine(ctx));
	e.go_arg1 = go_arg(ctx, 1);
	e.go_arg2 = go_arg(ctx, 2);
	e.c_arg1 = c_arg(ctx, 1);
	e.magic = selftest_magic;
	__u64 *tag = bpf_map_lookup_elem(&selftest_processes, &e.hdr.tgid);
	if (tag)
		e.process_tag = *tag;
	gotel_emit(&e, sizeof(e));
	return 0;
}

SEC("uprobe")
int selftest_uprobe(struct pt_regs *ctx)
{
	return selftest_report(ctx);
}

/* Same body for the uprobe.multi attach path (kernel >= 6.6); user space disables autoload of whichever
 * variant it does not use. */
SEC("uprobe.multi")
int selftest_uprobe_multi(struct pt_regs *ctx)
{
	return selftest_report(ctx);
}
