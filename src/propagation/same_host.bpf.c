/* Same-host linking, the kernel's half (bpf/include/same_host.h says the whole of it): which connection a traced
 * goroutine sends a request on, and which one it reads from. It also files the spans socket insertion puts on
 * the wire (socket_insert.h). One raw tracepoint on system call entry
 * (sys_enter: every kernel since 4.17 has it; kprobes and BPF trampolines are not everywhere — this project's
 * machines have neither), loaded and attached once by src/propagation/same-host.ts. It returns after two
 * compares for any call other than a socket read or write, and after one lookup for processes gotel does not
 * trace.
 *
 * The tracepoint hands over the calling thread's saved user registers: the syscall's arguments (the fd) and
 * the goroutine that made it, whose runtime.g pointer is in R14 (amd64) / X28 (arm64) (Go's syscall paths
 * leave that register alone). The fd is followed to its socket through the task's file table, with CO-RE
 * against the kernel's own BTF, and only a socket's (S_IFSOCK) is looked at. It runs before the call: a
 * request's span is filed before its bytes can reach the server.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "trace_context.h"
#include "same_host.h"
#include "socket_insert.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10

/* The members read, as the kernel names them; CO-RE finds where they are in the running kernel. */
struct in6_addr___gotel {
	__u8 s6_addr[16];
};
struct sock_common {
	union {
		struct {
			__be32 skc_daddr;
			__be32 skc_rcv_saddr;
		};
	};
	union {
		struct {
			__be16 skc_dport;
			__u16 skc_num;
		};
	};
	unsigned short skc_family;
	struct in6_addr___gotel skc_v6_daddr;
	struct in6_addr___gotel skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

/* from a task's fd to its socket */
struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));
struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));
struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));
struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));
struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));
struct task_struct {
	struct files_struct *files;
} __attribute__((preserve_access_index));

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* The system calls Go's net package reads and writes sockets with. */
#if defined(__TARGET_ARCH_x86)
enum { NR_READ = 0, NR_WRITE = 1, NR_READV = 19, NR_WRITEV = 20, NR_SENDTO = 44, NR_RECVFROM = 45, NR_SENDMSG = 46, NR_RECVMSG = 47 };
#else
enum { NR_READ = 63, NR_WRITE = 64, NR_READV = 65, NR_WRITEV = 66, NR_SENDTO = 206, NR_RECVFROM = 207, NR_SENDMSG = 211, NR_RECVMSG = 212 };
#endif

/* The connection of sk (an IPv4 or IPv6 socket), its local end as the client's (client_side) or the server's; 0 when it is one. */
static __always_inline int connection(struct sock *sk, struct gotel_conn_key *k, int client_side)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 *local = client_side ? k->client_addr : k->server_addr;
	__u8 *remote = client_side ? k->server_addr : k->client_addr;
	if (family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr), r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(local, &l, 4);
		__builtin_memcpy(remote, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr___gotel *)local, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr___gotel *)remote, sk, __sk_common.skc_v6_daddr);
	} else {
		return -1;
	}
	__u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	__u16 rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k->client_port = client_side ? lport : rport;
	k->server_port = client_side ? rport : lport;
	k->family = family;
	return 0;
}

static __always_inline int same_connection(const struct gotel_conn_key *a, const struct gotel_conn_key *b)
{
	_Static_assert(sizeof(*a) == 48, "six words");
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4] && x[5] == y[5];
}

/* The TCP socket behind fd in the current task, or NULL. */
static __always_inline struct sock *socket_of(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : 0;
}

/* a span context as the links map keeps it, made from a pending gRPC stream's (no tracestate) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gotel_span_context);
} same_host_scratch SEC(".maps");

/* The HTTP/2 or gRPC streams this goroutine encoded since its last send, filed under (connection, stream id). */
static __always_inline void file_streams(__u32 tgid, __u64 g, __u64 fd)
{
	struct gotel_ctx_key pending = {.tgid = tgid, .ctx = g};
	struct gotel_link_streams *p = bpf_map_lookup_elem(&gotel_link_pending_streams, &pending);
	if (!p) /* most sends: one lookup */
		return;
	__u32 zero = 0;
	struct gotel_span_context *sc = bpf_map_lookup_elem(&same_host_scratch, &zero);
	if (!sc)
		return;
	struct sock *sk = socket_of(fd);
	struct gotel_conn_key k = {};
	if (sk && connection(sk, &k, 1) == 0) {
		sc->tracestate_len = 0;
		for (int i = 0; i < GOTEL_LINK_STREAMS_MAX; i++) {
			struct gotel_link_stream *s = &p->s[i];
			if (!s->id)
				continue;
			__builtin_memcpy(sc->trace_id, s->trace_id, 16);
			__builtin_memcpy(sc->span_id, s->span_id, 8);
			sc->flags = s->flags;
			k.stream = s->id;
			bpf_map_update_elem(&gotel_conn_links, &k, sc, BPF_ANY);
		}
	}
	bpf_map_delete_elem(&gotel_link_pending_streams, &pending);
}

/* A write: if this goroutine has a request's span pending, file it under the connection, for the server on this
 * host (SENDS) and for the socket's sk_msg program (INSERTS: only on connections in its SOCKHASH). */
static __always_inline void on_send(__u32 tgid, __u32 roles, __u64 g, __u64 fd)
{
	struct gotel_ctx_key pending = {.tgid = tgid, .ctx = g};
	struct gotel_span_context *sc = bpf_map_lookup_elem(&gotel_link_pending, &pending);
	if (!sc)
		return;
	struct sock *sk = socket_of(fd);
	struct gotel_conn_key k = {};
	if (sk && connection(sk, &k, 1) == 0) {
		if (roles & GOTEL_LINK_SENDS)
			bpf_map_update_elem(&gotel_conn_links, &k, sc, BPF_ANY);
		if (roles & GOTEL_LINK_INSERTS) {
			if (bpf_map_lookup_elem(&gotel_sock_inserting, &k))
				bpf_map_update_elem(&gotel_conn_inserts, &k, sc, BPF_ANY);
			else
				gotel_count(GOTEL_COUNTER_SOCKET_OLD_CONNECTION);
		}
	}
	bpf_map_delete_elem(&gotel_link_pending, &pending);
}

/* The connection this goroutine reads (a serving goroutine reads one all its life) or writes (a gRPC loopy
 * writer), remembered in map; client_side: the goroutine's end is the connection's client. */
static __always_inline void remember(void *map, __u32 tgid, __u64 g, __u64 fd, int client_side)
{
	struct sock *sk = socket_of(fd);
	struct gotel_conn_key k = {};
	if (!sk || connection(sk, &k, client_side))
		return;
	struct gotel_ctx_key who = {.tgid = tgid, .ctx = g};
	struct gotel_conn_key *last = bpf_map_lookup_elem(map, &who);
	if (!last || !same_connection(last, &k))
		bpf_map_update_elem(map, &who, &k, BPF_ANY);
}

/*   sys_enter(struct pt_regs *regs, long id): regs are the caller's saved user registers */
SEC("raw_tp/sys_enter")
int same_host_syscall(__u64 *args)
{
	long id = args[1];
	int send = id == NR_WRITE || id == NR_WRITEV || id == NR_SENDTO || id == NR_SENDMSG;
	int receive = id == NR_READ || id == NR_READV || id == NR_RECVFROM || id == NR_RECVMSG;
	if (!send && !receive)
		return 0;
	__u32 tgid = gotel_current_tgid();
	__u32 *roles = bpf_map_lookup_elem(&gotel_link_tgids, &tgid);
	if (!roles || !(*roles & (send ? GOTEL_LINK_SENDS | GOTEL_LINK_INSERTS | GOTEL_LINK_STREAMS | GOTEL_LINK_WRITERS : GOTEL_LINK_READS)))
		return 0;
	const struct gotel_user_regs *regs = (const void *)args[0];
	__u64 g = 0, fd = 0;
#if defined(__TARGET_ARCH_x86)
	bpf_probe_read_kernel(&g, sizeof(g), &regs->r14);
	bpf_probe_read_kernel(&fd, sizeof(fd), &regs->di);
#else
	bpf_probe_read_kernel(&g, sizeof(g), &regs->regs[28]);
	bpf_probe_read_kernel(&fd, sizeof(fd), &regs->regs[0]);
#endif
	if (!g)
		return 0;
	if (send) {
		__u32 r = *roles;
		if (r & (GOTEL_LINK_SENDS | GOTEL_LINK_INSERTS))
			on_send(tgid, r, g, fd);
		if (r & GOTEL_LINK_STREAMS)
			file_streams(tgid, g, fd);
		if (r & GOTEL_LINK_WRITERS)
			remember(&gotel_conn_writes, tgid, g, fd, 1);
	}
	else
		remember(&gotel_conn_reads, tgid, g, fd, 0);
	return 0;
}
