/* What every event sent to user space starts with, and the one ring buffer they travel through.
 *
 * User space reads this layout from the object's BTF (src/ebpf/btf.ts), never from a copy of it, so fields
 * may be added here freely. Events are written with BPF_RB_NO_WAKEUP: the agent drains the ring on a timer,
 * and a wakeup per event costs ~15 us on our machines. A reserve that fails is counted in `drops`, with the
 * other things that go wrong or are skipped in the kernel (enum gotel_counter).
 */
#ifndef GOTEL_EVENT_H
#define GOTEL_EVENT_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Which probe produced an event: the self-test's is fixed (user space reads it from BTF by name); every
 * instrumentation's object is given its own at load, in gotel_event_type_id (src/probes/probe-set.ts numbers
 * them by their place in src/instrumentations/index.ts), so adding an instrumentation touches no shared list. */
enum gotel_event_type {
	GOTEL_EVENT_SELFTEST = 1,
	GOTEL_EVENT_FIRST_INSTRUMENTATION = 2,
	GOTEL_EVENT_TYPES_MAX = 64, /* event types are below this: each has its own loss counters in `drops` */
};

/* This object's event type, rewritten by user space after open, before load. */
volatile const __u32 gotel_event_type_id = 0;

/* Indexes of the `drops` counters that are the core's (user space reads the names from BTF). An instrumentation's
 * own reasons for losing spans are an enum in its own header, counted with gotel_count_own() (below). */
enum gotel_counter {
	GOTEL_COUNTER_RINGBUF_FULL = 0,   /* an event lost: the ring buffer was full */
	GOTEL_COUNTER_INFLIGHT_LOST = 1,  /* a return found no entry: evicted from a full LRU map, span lost */
	GOTEL_COUNTER_UNSAMPLED = 2,      /* spans not sent because their trace is not sampled */
	GOTEL_COUNTER_INJECTED = 3,       /* traceparent headers written into outgoing requests */
	GOTEL_COUNTER_INJECT_PRESENT = 4, /* not injected: the application had set traceparent itself */
	GOTEL_COUNTER_INJECT_NO_ROOM = 5, /* not injected: no room in the request's write buffer, a writer that did not
					   * look like a bufio.Writer, or a failed write */
	GOTEL_COUNTER_LINKED_SAME_HOST = 6, /* server spans that continued a client span of this host (same_host.h) */
	/* socket insertion (socket_traceparent.bpf.c): headers inserted into the bytes of outgoing HTTP/1 requests; */
	GOTEL_COUNTER_SOCKET_INSERTED = 7,
	GOTEL_COUNTER_SOCKET_OLD_CONNECTION = 8, /* not: the connection was opened before gotel attached (a miss) */
	GOTEL_COUNTER_SOCKET_NOT_HTTP1 = 9,       /* not: the bytes sent were no HTTP/1 request line (TLS, or a
						   * request line longer than the 1 KiB looked at) */
	GOTEL_COUNTER_SOCKET_FAILED = 10,          /* not: the kernel refused to insert (no memory), a miss */
	GOTEL_COUNTER_LINK_UNNAMED_CONNECTION = 11, /* an HTTP/2 stream without context served on a connection gotel
						     * never named (accepted before it attached): not linked on this host */
	GOTEL_COUNTER_MAX = 12,
	/* then, for each event type, this many of its instrumentation's own: at
	 * GOTEL_COUNTER_MAX + event type * GOTEL_COUNTER_OWN_PER_TYPE + its enum's value */
	GOTEL_COUNTER_OWN_PER_TYPE = 4,
};

struct gotel_event_header {
	__u32 type;      /* enum gotel_event_type */
	__u32 tgid;      /* process id, as gotel sees it (see gotel_current_pid_tgid) */
	__u32 tid;       /* thread id, likewise */
	__u32 cpu;
	__u64 goroutine; /* runtime.g pointer, 0 outside Go code */
	__u64 start_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) at entry */
	__u64 end_ns;    /* at return; equals start_ns for a point event */
};

/* clang's BTF describes only types that a global or a function refers to; an event struct built on the
 * stack would be missing, and user space reads event layouts from BTF. This anchors a type in BTF through
 * an unused .rodata pointer. */
#define GOTEL_BTF_TYPE(tag, type) type *const volatile gotel_btf_##tag __attribute__((unused)) = 0

GOTEL_BTF_TYPE(event_header, struct gotel_event_header);
GOTEL_BTF_TYPE(event_type, enum gotel_event_type);
GOTEL_BTF_TYPE(counter, enum gotel_counter);

#ifndef GOTEL_RINGBUF_BYTES
#define GOTEL_RINGBUF_BYTES (4 << 20) /* ~4,000 span events: 200 ms at 20k spans/s while user space is busy */
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, GOTEL_RINGBUF_BYTES);
} events SEC(".maps");

/* Indexed by enum gotel_counter, then the instrumentations' own; shared by every object (user space reuses one
 * object's map in the others). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GOTEL_COUNTER_MAX + GOTEL_EVENT_TYPES_MAX * GOTEL_COUNTER_OWN_PER_TYPE);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void gotel_count_n(enum gotel_counter c, __u64 by)
{
	__u32 key = c;
	__u64 *n = bpf_map_lookup_elem(&drops, &key);
	if (n)
		*n += by;
}

static __always_inline void gotel_count(enum gotel_counter c)
{
	gotel_count_n(c, 1);
}

/* Counts one of this object's own reasons for losing spans: a value of an enum in the instrumentation's header
 * (from 0, below GOTEL_COUNTER_OWN_PER_TYPE), kept in BTF with GOTEL_BTF_TYPE; its entry in
 * src/instrumentations/index.ts names the enum and what each reason is called in the `stopped` line. */
static __always_inline void gotel_count_own_n(__u32 own, __u64 by)
{
	if (own >= GOTEL_COUNTER_OWN_PER_TYPE)
		return;
	__u32 key = GOTEL_COUNTER_MAX + gotel_event_type_id * GOTEL_COUNTER_OWN_PER_TYPE + own;
	__u64 *n = bpf_map_lookup_elem(&drops, &key);
	if (n)
		*n += by;
}

static __always_inline void gotel_count_own(__u32 own)
{
	gotel_count_own_n(own, 1);
}

/* gotel's own PID namespace (stat -L /proc/self/ns/pid), set by user space before load. Processes are known
 * to user space by the pids it sees in /proc, which differ from the kernel's global pids when gotel runs in a
 * container that shares the app's PID namespace. */
volatile const __u64 gotel_pidns_dev = 0;
volatile const __u64 gotel_pidns_ino = 0;

/* (tgid << 32 | tid) as gotel sees them: in its own PID namespace when the current task is in it, otherwise
 * the global ids (gotel in the host namespace looking at a process in a container). */
static __always_inline __u64 gotel_current_pid_tgid(void)
{
	if (gotel_pidns_ino) {
		struct bpf_pidns_info ns = {};
		if (bpf_get_ns_current_pid_tgid(gotel_pidns_dev, gotel_pidns_ino, &ns, sizeof(ns)) == 0)
			return (__u64)ns.tgid << 32 | ns.pid;
	}
	return bpf_get_current_pid_tgid();
}

static __always_inline __u32 gotel_current_tgid(void)
{
	return gotel_current_pid_tgid() >> 32;
}

static __always_inline void gotel_fill_header(struct gotel_event_header *h, __u32 type, __u64 goroutine)
{
	__u64 pid_tgid = gotel_current_pid_tgid();
	h->type = type;
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->cpu = bpf_get_smp_processor_id();
	h->goroutine = goroutine;
	h->start_ns = bpf_ktime_get_ns();
	h->end_ns = h->start_ns;
}

/* Sends an event built on the stack (or in a per-CPU scratch map); counts it as dropped if there is no room. */
static __always_inline void gotel_emit(const void *event, __u64 size)
{
	if (bpf_ringbuf_output(&events, (void *)event, size, BPF_RB_NO_WAKEUP) != 0)
		gotel_count(GOTEL_COUNTER_RINGBUF_FULL);
}

#endif
