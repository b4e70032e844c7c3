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
 * leave that register alone). The fd is followed to its socket through the task's file table, at offsets
 * read from the kernel's own BTF before load, and only a socket's (S_IFSOCK) is looked at. It runs before the call: a
 * request's span is filed before its bytes can reach the server.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "go_abi.h"
#include "go_types.h"
#include "event.h"
#include "trace_context.h"
#include "same_host.h"
#include "socket_insert.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10

/* Where the kernel members read sit in the running kernel: src/propagation/same-host.ts sets these from the
 * kernel's BTF before load (KERNEL_FIELDS there names each one's member; src/ebpf/kernel-btf.ts says why not CO-RE). */
volatile const __u32 k_task_files;        /* task_struct.files */
volatile const __u32 k_files_fdt;         /* files_struct.fdt */
volatile const __u32 k_fdtable_max_fds;   /* fdtable.max_fds (4 bytes) */
volatile const __u32 k_fdtable_fd;        /* fdtable.fd */
volatile const __u32 k_file_inode;        /* file.f_inode */
volatile const __u32 k_file_private_data; /* file.private_data */
volatile const __u32 k_inode_mode;        /* inode.i_mode (2 bytes) */
volatile const __u32 k_socket_sk;         /* socket.sk */
volatile const __u32 k_sock_family;       /* sock.__sk_common.skc_family (2 bytes) */
volatile const __u32 k_sock_daddr;        /* sock.__sk_common.skc_daddr (4 bytes) */
volatile const __u32 k_sock_rcv_saddr;    /* sock.__sk_common.skc_rcv_saddr (4 bytes) */
volatile const __u32 k_sock_v6_daddr;     /* sock.__sk_common.skc_v6_daddr (16 bytes) */
volatile const __u32 k_sock_v6_rcv_saddr; /* sock.__sk_common.skc_v6_rcv_saddr (16 bytes) */
volatile const __u32 k_sock_dport;        /* sock.__sk_common.skc_dport (2 bytes) */
volatile const __u32 k_sock_num;          /* sock.__sk_common.skc_num (2 bytes) */

/* n bytes of kernel memory at base + off into to (zeroed where the read fails) */
#define KREAD(to, base, off) bpf_probe_read_kernel(&(to), sizeof(to), (const char *)(base) + (off))

static __always_inline __u64 kread_ptr(const void *base, __u32 off)
{
	__u64 v = 0;
	KREAD(v, base, off);
	return v;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* The system calls Go's net package reads and writes sockets with. */
#if defined(__TARGET_ARCH_x86)
enum { NR_READ = 0, NR_WRITE = 1, NR_READV = 19, NR_WRITEV = 20, NR_SENDTO = 44, NR_RECVFROM = 45, NR_SENDMSG = 46, NR_RECVMSG = 47 };
#else
enum { NR_READ = 63, NR_WRITE = 64, NR_READV = 65, NR_WRITEV = 66, NR_SENDTO = 206, NR_RECVFROM = 207, NR_SENDMSG = 211, NR_RECVMSG = 212 };
#endif

/* The connection of sk (an IPv4 or IPv6 socket), its local end as the client's (client_side) or the server's; 0 when it is one. */
static __always_inline int connection(const void *sk, struct gotel_conn_key *k, int client_side)
{
	__u16 family = 0;
	KREAD(family, sk, k_sock_family);
	__u8 *local = client_side ? k->client_addr : k->server_addr;
	__u8 *remote = client_side ? k->server_addr : k->client_addr;
	if (family == AF_INET) {
		bpf_probe_read_kernel(local, 4, (const char *)sk + k_sock_rcv_saddr);
		bpf_probe_read_kernel(remote, 4, (const char *)sk + k_sock_daddr);
	} else if (family == AF_INET6) {
		bpf_probe_read_kernel(local, 16, (const char *)sk + k_sock_v6_rcv_saddr);
		bpf_probe_read_kernel(remote, 16, (const char *)sk + k_sock_v6_daddr);
	} else {
		return -1;
	}
	__u16 lport = 0, dport = 0;
	KREAD(lport, sk, k_sock_num);
	KREAD(dport, sk, k_sock_dport);
	__u16 rport = __builtin_bswap16(dport);
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

/* The TCP socket (struct sock) behind fd in the current task, or NULL. */
static __always_inline const void *socket_of(__u64 fd)
{
	const void *task = (const void *)bpf_get_current_task();
	const void *files = (const void *)kread_ptr(task, k_task_files);
	const void *fdt = files ? (const void *)kread_ptr(files, k_files_fdt) : 0;
	__u32 max_fds = 0;
	if (!fdt || (KREAD(max_fds, fdt, k_fdtable_max_fds), fd >= max_fds))
		return 0;
	const void *fds = (const void *)kread_ptr(fdt, k_fdtable_fd);
	const void *f = fds ? (const void *)kread_ptr(fds, fd * 8) : 0;
	if (!f)
		return 0;
	const void *inode = (const void *)kread_ptr(f, k_file_inode);
	__u16 mode = 0;
	if (!inode || (KREAD(mode, inode, k_inode_mode), (mode & S_IFMT) != S_IFSOCK))
		return 0;
	const void *sock = (const void *)kread_ptr(f, k_file_private_data);
	return sock ? (const void *)kread_ptr(sock, k_socket_sk) : 0;
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
	const void *sk = socket_of(fd);
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
	const void *sk = socket_of(fd);
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
	const void *sk = socket_of(fd);
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
