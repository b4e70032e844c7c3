/* Socket insertion, the kernel's half (bpf/include/socket_insert.h says the whole of it): a sock_ops program on
 * the cgroup v2 root chooses the connections (a traced process's, from connect to close), and an sk_msg program
 * on the SOCKHASH they are put into inserts a request's Traceparent (and Tracestate) header lines into the
 * bytes sent, after the request line. Loaded and attached by src/propagation/socket-traceparent.ts.
 *
 * Writes no process's memory: the bytes are the kernel's copy, on their way to the wire. Only plaintext HTTP/1
 * request lines are edited; anything else on those sockets passes untouched.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "event.h"
#include "trace_context.h"
#include "same_host.h"
#include "socket_insert.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
/* how much of a request's first bytes is looked at for the end of its request line */
#define REQUEST_LINE_MAX 1024

/* the traced processes' connections, keyed as same_host.h keys them; the sk_msg program is attached here */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 16384);
	__type(key, struct gotel_conn_key);
	__type(value, __u64);
} socket_traceparent_sockets SEC(".maps");

/* socket cookie -> tgid: a traced process's socket between its connect and its establishment */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} socket_traceparent_connecting SEC(".maps");

struct scratch {
	char line[1024]; /* >= GOTEL_HTTP1_TRACE_LINES_MAX, a power of two for the verifier's bounds */
	char head[REQUEST_LINE_MAX]; /* a message's first bytes, searched for the end of its request line */
	/* passed through memory for the verifier (request_line_end) */
	__s32 at;
	__u32 n;
};
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} socket_traceparent_scratch SEC(".maps");

/* A port as sock_ops and sk_msg give the remote one: network order, in the upper or the lower 16 bits. */
static __always_inline __u16 remote_port(__u32 v)
{
	return __builtin_bswap16((__u16)((v >> 16) | (v & 0xffff)));
}

/* The connection of a sock_ops or sk_msg context (the same fields in both), seen from its client, the local end.
 * A macro: context fields are read at constant offsets only. */
#define CONNECTION_OF(c, k)                                                                                          \
	({                                                                                                           \
		int __ok = 1;                                                                                        \
		(k)->family = (c)->family;                                                                           \
		if ((k)->family == AF_INET) {                                                                        \
			__u32 __l = (c)->local_ip4, __r = (c)->remote_ip4;                                           \
			__builtin_memcpy((k)->client_addr, &__l, 4);                                                 \
			__builtin_memcpy((k)->server_addr, &__r, 4);                                                 \
		} else if ((k)->family == AF_INET6) {                                                                \
			__u32 *__l = (__u32 *)(k)->client_addr, *__r = (__u32 *)(k)->server_addr;                   \
			__l[0] = (c)->local_ip6[0], __l[1] = (c)->local_ip6[1];                                      \
			__l[2] = (c)->local_ip6[2], __l[3] = (c)->local_ip6[3];                                      \
			__r[0] = (c)->remote_ip6[0], __r[1] = (c)->remote_ip6[1];                                    \
			__r[2] = (c)->remote_ip6[2], __r[3] = (c)->remote_ip6[3];                                    \
		} else {                                                                                             \
			__ok = 0;                                                                                    \
		}                                                                                                    \
		(k)->client_port = (c)->local_port;                                                                  \
		(k)->server_port = remote_port((c)->remote_port);                                                    \
		__ok;                                                                                                \
	})

/* The process connecting, as gotel knows it. Linux 6.10+ lets sock_ops programs ask (in gotel's PID namespace);
 * before, the task's tgid is read, which is the pid gotel knows only where it runs in the host's PID namespace —
 * user space loads that variant, socket_traceparent_task.bpf.c, only there, with task_struct.tgid's offset in the
 * running kernel (from its BTF: src/ebpf/kernel-btf.ts). */
#ifdef SOCKET_TRACEPARENT_FROM_TASK
volatile const __u32 k_task_tgid;

static __always_inline __u32 connecting_tgid(void)
{
	__u32 tgid = 0;
	bpf_probe_read_kernel(&tgid, sizeof(tgid), (const char *)bpf_get_current_task() + k_task_tgid);
	return tgid;
}
#else
static __always_inline __u32 connecting_tgid(void)
{
	return gotel_current_tgid();
}
#endif

/* The first bytes of an outgoing connection's life: which ones are a traced process's. */
static __always_inline int on_sock_ops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: {
		/* in connect(2), on the connecting thread */
		__u32 tgid = connecting_tgid();
		__u32 *roles = bpf_map_lookup_elem(&gotel_link_tgids, &tgid);
		if (!roles || !(*roles & GOTEL_LINK_INSERTS))
			return 1;
		__u64 cookie = bpf_get_socket_cookie(skops);
		bpf_map_update_elem(&socket_traceparent_connecting, &cookie, &tgid, BPF_ANY);
		return 1;
	}
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: {
		/* in softirq, any task: the cookie says whose socket it is */
		__u64 cookie = bpf_get_socket_cookie(skops);
		__u32 *tgid = bpf_map_lookup_elem(&socket_traceparent_connecting, &cookie);
		if (!tgid)
			return 1;
		__u32 owner = *tgid;
		bpf_map_delete_elem(&socket_traceparent_connecting, &cookie);
		struct gotel_conn_key k = {};
		if (!CONNECTION_OF(skops, &k))
			return 1;
		if (bpf_sock_hash_update(skops, &socket_traceparent_sockets, &k, BPF_ANY) == 0) {
			bpf_map_update_elem(&gotel_sock_inserting, &k, &owner, BPF_ANY);
			/* to hear of its close, which drops it from gotel_sock_inserting */
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		}
		return 1;
	}
	case BPF_SOCK_OPS_STATE_CB: {
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
		struct gotel_conn_key k = {};
		if (CONNECTION_OF(skops, &k))
			bpf_map_delete_elem(&gotel_sock_inserting, &k);
		return 1;
	}
	}
	return 1;
}

SEC("sockops")
int socket_traceparent_sockops(struct bpf_sock_ops *skops)
{
	return on_sock_ops(skops);
}

/* Where the request line of the n bytes at msg->data ends (the offset after its CRLF), or -1 when they do not
 * start with one: a method's first capital, then " HTTP/1.x\r\n" within the first REQUEST_LINE_MAX bytes.
 * Written for the verifier's sake: the bytes are copied into the scratch buffer and searched there, and what the
 * search finds, and how long the message is, go through memory. Otherwise each byte the line could end at
 * leaves a state of its own (a known offset, a message length known to be longer, a checked packet range),
 * and the rest of the program is verified once for each: 200,000-330,000 instructions processed, ~250 ms. */
static __always_inline int request_line_end(struct sk_msg_md *msg, struct scratch *s, __u32 n)
{
	char *b = s->head;
	if (n < 16 || n > REQUEST_LINE_MAX || bpf_probe_read_kernel(b, n, (void *)(long)msg->data) || b[0] < 'A' || b[0] > 'Z')
		return -1;
	s->n = n;
	/* to the buffer's end, not the message's: bytes past it are an earlier message's, and a CR found there is
	 * refused below, after the loop (a check of n in it would refine n at every byte). The first CR from byte 10
	 * on, 8 bytes at a time (a loop over each byte cost the verifier ~8,000 instructions), without a branch
	 * inside a word, and the loop's one branch its exit at the word after the first CR: with a `continue` past
	 * words without one and a `break` at it, the program cost the verifier 23,898 instructions, now 15,445. */
	__u64 found = 0, at = 0;
	for (__u32 w = 1; w < REQUEST_LINE_MAX / 8; w++) {
		if (found)
			break;
		__u64 x = *(const __u64 *)(b + w * 8) ^ 0x0d0d0d0d0d0d0d0dULL;
		/* bit 7 of each byte (little-endian) that is CR; exact: no carries cross bytes */
		__u64 m = ~(((x & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | x | 0x7f7f7f7f7f7f7f7fULL);
		m &= ~(0x8080ULL & -(__u64)(w == 1)); /* bytes 8 and 9: inside the shortest method and path */
		__u64 low = m & -m; /* the first CR's bit alone: its byte, by halves */
		at = w * 8 + GOTEL_NONZERO(low & 0xffffffff00000000ULL) * 4 + GOTEL_NONZERO(low & 0xffff0000ffff0000ULL) * 2 +
			GOTEL_NONZERO(low & 0xff00ff00ff00ff00ULL);
		found = GOTEL_NONZERO(m);
	}
	s->at = found ? at : -1;
	__s32 cr = *(volatile __s32 *)&s->at;
	__u32 len = *(volatile __u32 *)&s->n;
	if (cr < 10 || cr >= REQUEST_LINE_MAX - 1 || (__u32)cr + 1 >= len || b[cr + 1] != '\n')
		return -1;
	const char *v = b + cr - 9;
	if (v[0] != ' ' || v[1] != 'H' || v[2] != 'T' || v[3] != 'T' || v[4] != 'P' || v[5] != '/' || v[6] != '1' || v[7] != '.')
		return -1;
	return cr + 2;
}

/* Copies size bytes of line to the start of msg's data (pulled to exactly the inserted bytes); 0 when it did.
 * 8 bytes at a time, then the last 8 again (the lines are longer than 8): the verifier walks every iteration of
 * a loop, and a byte at a time cost it ~40,000 instructions. */
static __always_inline int write_lines(struct sk_msg_md *msg, const char *line, __u64 size)
{
	if (size < 8 || size > GOTEL_HTTP1_TRACE_LINES_MAX)
		return -1;
	char *data = (char *)(long)msg->data, *end = (char *)(long)msg->data_end;
	for (__u32 i = 0; i < GOTEL_HTTP1_TRACE_LINES_MAX / 8; i++) {
		__u32 at = i * 8;
		if (at + 8 > size)
			break;
		char *p = data + at;
		if (p + 8 > end)
			return -1;
		*(__u64 *)p = *(const __u64 *)(line + at);
	}
	/* the last 8 through pointers read again: the loop's exits differ only in how much of the packet they
	 * checked, which the verifier then forgets, and it follows the rest once instead of once per exit */
	barrier_var(msg);
	data = (char *)(long)msg->data;
	end = (char *)(long)msg->data_end;
	__u64 last = size - 8;
	/* a mask that changes nothing (size <= GOTEL_HTTP1_TRACE_LINES_MAX) but bounds `last` on the loop's exits that
	 * cannot happen, which verifiers before 6.8 or so follow with impossible ranges (then refuse the pointer);
	 * the barriers keep clang from dropping it, and from testing data + size while writing through data + last
	 * (two pointers to the verifier) */
	barrier_var(last);
	last &= 1023;
	barrier_var(last);
	char *p = data + last;
	if (p + 8 > end)
		return -1;
	*(__u64 *)p = *(const __u64 *)(line + last);
	return 0;
}

static __always_inline void insert(struct sk_msg_md *msg, struct scratch *s, __u64 size)
{
	const char *line = s->line;
	__u32 looked = msg->size < REQUEST_LINE_MAX ? msg->size : REQUEST_LINE_MAX;
	if (looked < 16 || bpf_msg_pull_data(msg, 0, looked, 0)) {
		gotel_count(GOTEL_COUNTER_SOCKET_NOT_HTTP1);
		return;
	}
	int at = request_line_end(msg, s, looked);
	if (at < 0) {
		gotel_count(GOTEL_COUNTER_SOCKET_NOT_HTTP1);
		return;
	}
	if (bpf_msg_push_data(msg, at, size, 0)) {
		gotel_count(GOTEL_COUNTER_SOCKET_FAILED);
		return;
	}
	if (bpf_msg_pull_data(msg, at, at + size, 0) || write_lines(msg, line, size)) {
		/* never send the inserted bytes unwritten */
		bpf_msg_pop_data(msg, at, size, 0);
		gotel_count(GOTEL_COUNTER_SOCKET_FAILED);
		return;
	}
	gotel_count(GOTEL_COUNTER_SOCKET_INSERTED);
}

/* Every send on a traced process's connection: the span filed for it, if any, goes on the wire. */
SEC("sk_msg")
int socket_traceparent_msg(struct sk_msg_md *msg)
{
	struct gotel_conn_key k = {};
	if (!CONNECTION_OF(msg, &k))
		return SK_PASS;
	struct gotel_span_context *sc = bpf_map_lookup_elem(&gotel_conn_inserts, &k);
	if (!sc)
		return SK_PASS;
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&socket_traceparent_scratch, &zero);
	if (!s)
		return SK_PASS;
	__u64 size = gotel_http1_trace_lines(s->line, sc);
	bpf_map_delete_elem(&gotel_conn_inserts, &k);
	if (size <= GOTEL_HTTP1_TRACE_LINES_MAX)
		insert(msg, s, size);
	return SK_PASS;
}
