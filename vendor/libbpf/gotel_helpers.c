// SPDX-License-Identifier: Apache-2.0
/*
 * gotel_helpers.c — small C helpers linked into gotel's libbpf shared object.
 *
 * They exist so that the TypeScript side (bun:ffi) never hand-packs libbpf's opts structs (their layout
 * changes between libbpf releases), never formats a va_list, and never reads errno across two FFI calls
 * (the JS runtime may clobber it in between): every failing helper returns the error as a negative errno.
 *
 * The file also holds the glibc compatibility shim (end of file) that keeps the .so loadable on glibc 2.28.
 * Exported names start with gotel_ (see gotel.map); everything else here is hidden.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#ifndef GOTEL_LIBBPF_VERSION
#error "build with -DGOTEL_LIBBPF_VERSION=\"x.y.z\""
#endif

#define GOTEL_API __attribute__((visibility("default")))

/* -errno of the libbpf call that just failed; never 0 so that callers can rely on "negative = error". */
static int neg_errno(void)
{
	int e = errno;
	return e > 0 ? -e : -EINVAL;
}

/* ---- logging ------------------------------------------------------------------------------------------ */

typedef void (*gotel_log_fn)(int level, const char *msg);

static gotel_log_fn log_fn;
/* Short lines are formatted into one static buffer (libbpf logs from the thread that calls it, and the agent
 * drives libbpf from one thread). A verifier log arrives as a single message that can be megabytes long, and
 * its reason is at the end, so longer messages get a heap buffer of their own, up to LOG_MAX. */
#define LOG_MAX (64u << 20)
static char log_buf[16384];

/* Cuts s to at most max bytes without leaving half of a UTF-8 sequence at the end. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	len = max;
	while (len > 0 && ((unsigned char)s[len - 1] & 0xC0) == 0x80)
		len--;
	if (len > 0 && ((unsigned char)s[len - 1] & 0x80))
		len--; /* the lead byte of the cut sequence */
	return len;
}

/* The load a thread runs (gotel_load_start): libbpf's lines are kept with it, never passed to JavaScript, which
 * only its own thread may call. */
struct gotel_load {
	pthread_t thread;
	struct bpf_object *obj;
	int err;
	/* each line: its level as one byte ('0' + level), its text, a NUL */
	char *log;
	size_t len, cap;
};
static __thread struct gotel_load *running_load;

static int keep_line(struct gotel_load *l, enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	int n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	size_t len = utf8_cut(msg, (size_t)n, LOG_MAX);
	if (len > 0 && msg[len - 1] == '\n')
		len--;
	if (l->len + len + 2 > l->cap) {
		size_t cap = l->cap * 2 > l->len + len + 2 ? l->cap * 2 : l->len + len + 2 + 4096;
		char *grown = realloc(l->log, cap);
		if (!grown) {
			free(msg);
			return n;
		}
		l->log = grown;
		l->cap = cap;
	}
	l->log[l->len++] = (char)('0' + level);
	memcpy(l->log + l->len, msg, len);
	l->len += len;
	l->log[l->len++] = '\0';
	free(msg);
	return n;
}

/* libbpf's debug lines: thousands an object (every map, program, relocation), each a call into JavaScript or a
 * kept line, and read by no one unless gotel logs at debug level or shows verifier logs (libbpf prints the log
 * of a program that passed at debug level). Off until gotel_keep_debug_lines. */
static volatile int keep_debug;

GOTEL_API void gotel_keep_debug_lines(void)
{
	keep_debug = 1;
}

static int log_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !keep_debug)
		return 0;
	struct gotel_load *load = running_load;
	if (load)
		return keep_line(load, level, fmt, ap);
	gotel_log_fn fn = log_fn;
	if (!fn)
		return 0;
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(log_buf, sizeof(log_buf), fmt, ap);
	char *msg = log_buf, *heap = NULL;
	size_t cap = sizeof(log_buf);
	if (n >= 0 && (size_t)n >= sizeof(log_buf)) {
		cap = (size_t)n < LOG_MAX ? (size_t)n + 1 : LOG_MAX;
		heap = malloc(cap);
		if (heap) {
			vsnprintf(heap, cap, fmt, again);
			msg = heap;
		} else {
			cap = sizeof(log_buf);
		}
	}
	va_end(again);
	if (n < 0)
		return 0;
	size_t len = utf8_cut(msg, (size_t)n, cap - 1);
	msg[len] = '\0';
	if (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	fn((int)level, msg);
	free(heap);
	return n;
}

GOTEL_API void gotel_set_log(gotel_log_fn fn)
{
	log_fn = fn;
	libbpf_set_print(fn ? log_print : NULL);
}

/* ---- objects and links -------------------------------------------------------------------------------- */

GOTEL_API struct bpf_object *gotel_open_mem(const void *buf, size_t size, const char *name,
					     unsigned int kernel_log_level, int *err)
{
	/* no BPF token: gotel runs with CAP_BPF/CAP_SYS_ADMIN, and libbpf's attempt to make one from /sys/fs/bpf
	 * fails on every object (EINVAL without a delegating bpffs), a few ms each */
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name, .kernel_log_level = kernel_log_level,
		    .bpf_token_path = "");
	struct bpf_object *obj = bpf_object__open_mem(buf, size, &opts);
	if (err)
		*err = obj ? 0 : neg_errno();
	return obj;
}

/* ---- loads in threads of their own ------------------------------------------------------------------------ */
/*
 * The kernel's verifier is most of an agent's start, and it runs in the thread that asks for the load: objects that
 * do not depend on each other load side by side, one thread each. Nothing else may touch an object while it loads.
 * A loading thread blocks every signal, so the process's signals go to the other threads and never interrupt
 * the verifier (which gives up with EAGAIN when one is pending).
 */
static void *run_load(void *arg)
{
	struct gotel_load *l = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	running_load = l;
	int err = bpf_object__load(l->obj);
	running_load = NULL;
	l->err = err < 0 ? err : 0;
	return NULL;
}

/* Starts loading obj in a thread of its own; NULL (and *err) when no thread could be made. */
GOTEL_API struct gotel_load *gotel_load_start(struct bpf_object *obj, int *err)
{
	struct gotel_load *l = calloc(1, sizeof(*l));
	if (!l) {
		*err = -ENOMEM;
		return NULL;
	}
	l->obj = obj;
	int e = pthread_create(&l->thread, NULL, run_load, l);
	if (e) {
		free(l);
		*err = -e;
		return NULL;
	}
	*err = 0;
	return l;
}

/* Waits for the load to end: bpf_object__load's result; *log, *log_len: what libbpf logged meanwhile (lines as
 * struct gotel_load keeps them), valid until gotel_load_free. */
GOTEL_API int gotel_load_join(struct gotel_load *l, const char **log, size_t *log_len)
{
	pthread_join(l->thread, NULL);
	*log = l->log;
	*log_len = l->len;
	return l->err;
}

GOTEL_API void gotel_load_free(struct gotel_load *l)
{
	if (!l)
		return;
	free(l->log);
	free(l);
}

GOTEL_API struct bpf_link *gotel_attach_uprobe(const struct bpf_program *prog, int pid, const char *path,
						size_t offset, unsigned long long cookie, int *err)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = false);
	struct bpf_link *link = bpf_program__attach_uprobe_opts(prog, pid, path, offset, &opts);
	if (err)
		*err = link ? 0 : neg_errno();
	return link;
}

GOTEL_API struct bpf_link *gotel_attach_uprobe_multi(const struct bpf_program *prog, int pid, const char *path,
						      const unsigned long *offsets,
						      const unsigned long long *cookies, size_t count, int *err)
{
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .offsets = offsets, .cookies = (const __u64 *)cookies,
		    .cnt = count, .retprobe = false);
	struct bpf_link *link = bpf_program__attach_uprobe_multi(prog, pid, path, NULL, &opts);
	if (err)
		*err = link ? 0 : neg_errno();
	return link;
}

/* ---- batching ring-buffer reader ---------------------------------------------------------------------- */

/*
 * Records are appended to the caller's buffer as [u32 len][u32 reserved=0][len bytes][zero pad to 8], so one
 * FFI call hands over a whole batch instead of one JS callback per event.
 */
struct gotel_ring {
	struct ring_buffer *rb;
	unsigned char *buf;
	size_t cap;
	size_t used;   /* bytes written during the current drain */
	int full;      /* the current drain hit a record that did not fit */
};

static int ring_sample(void *ctx, void *data, size_t size)
{
	struct gotel_ring *r = ctx;
	size_t padded = (size + 7) & ~(size_t)7;
	if (r->full || size > 0xffffffffu || 8 + padded > r->cap - r->used) {
		/* libbpf has already advanced past this record: it is lost, and the caller counts it. */
		r->full = 1;
		return -ENOSPC;
	}
	unsigned char *p = r->buf + r->used;
	unsigned int hdr[2] = { (unsigned int)size, 0 };
	memcpy(p, hdr, sizeof(hdr));
	memcpy(p + 8, data, size);
	memset(p + 8 + size, 0, padded - size);
	r->used += 8 + padded;
	return 0;
}

GOTEL_API struct gotel_ring *gotel_ring_new(int map_fd, void *buf, size_t cap, int *err)
{
	struct gotel_ring *r = calloc(1, sizeof(*r));
	if (!r) {
		if (err)
			*err = -ENOMEM;
		return NULL;
	}
	r->buf = buf;
	r->cap = cap;
	r->rb = ring_buffer__new(map_fd, ring_sample, r, NULL);
	if (!r->rb) {
		int e = neg_errno();
		free(r);
		if (err)
			*err = e;
		return NULL;
	}
	if (err)
		*err = 0;
	return r;
}

GOTEL_API long gotel_ring_drain(struct gotel_ring *r, unsigned long long *dropped)
{
	if (!r)
		return -EINVAL;
	r->used = 0;
	r->full = 0;
	int n = ring_buffer__consume(r->rb);
	if (r->full) {
		/* exactly one record was refused: the callback's error stopped consumption right there */
		if (dropped)
			*dropped += 1;
		return (long)r->used;
	}
	if (n < 0)
		return n;
	return (long)r->used;
}

GOTEL_API void gotel_ring_free(struct gotel_ring *r)
{
	if (!r)
		return;
	ring_buffer__free(r->rb);
	free(r);
}

/* ---- misc --------------------------------------------------------------------------------------------- */

/* A function for `gotel doctor` to put a uprobe on and call: kept out of line and never optimised away. */
GOTEL_API __attribute__((noinline, used)) unsigned long gotel_uprobe_trigger(unsigned long x)
{
	__asm__ volatile("" : "+r"(x) : : "memory");
	return x + 1;
}

GOTEL_API const char *gotel_libbpf_version(void)
{
	return GOTEL_LIBBPF_VERSION;
}

/* ---- glibc compatibility shim ------------------------------------------------------------------------- */
/*
 * glibc 2.34 moved the pthread functions into libc.so.6 under new versions (GLIBC_2.34); their first versions are
 * still there, and before 2.34 they are in libpthread.so.0, which Bun itself links. Binding to the first versions
 * keeps the .so loadable on older glibc (the dynamic linker finds them in whichever object defines them).
 */
#if defined(__x86_64__)
#define GLIBC_FIRST "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define GLIBC_FIRST "GLIBC_2.17"
#else
#error "which glibc version is this architecture's first?"
#endif
__asm__(".symver pthread_create,pthread_create@" GLIBC_FIRST);
__asm__(".symver pthread_join,pthread_join@" GLIBC_FIRST);
__asm__(".symver pthread_sigmask,pthread_sigmask@" GLIBC_FIRST);

/*
 * Built against Debian 12's glibc 2.36, libbpf and libelf would bind to fstat@GLIBC_2.33 (before 2.33 fstat
 * was an inline wrapper around __fxstat) and fcntl64@GLIBC_2.28, raising the .so's glibc floor to 2.33.
 * These hidden definitions satisfy those references inside the .so with the raw system calls instead, so
 * the dynamic symbol table never asks for them. On 64-bit Linux the kernel's struct stat and struct flock are
 * the ones glibc uses, so passing them straight through is exact. syscall() sets errno like the libc calls.
 */
__attribute__((visibility("hidden"))) int fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}

__attribute__((visibility("hidden"))) int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	unsigned long arg = va_arg(ap, unsigned long); /* every fcntl argument fits a register-sized word */
	va_end(ap);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}
