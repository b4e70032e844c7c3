/* Go values as they sit in the target's memory, and bounded reads of them. */
#ifndef GOTEL_GO_TYPES_H
#define GOTEL_GO_TYPES_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct go_string {
	__u64 ptr;
	__s64 len;
};

struct go_slice {
	__u64 ptr;
	__s64 len;
	__s64 cap;
};

/* A non-empty interface is (itab, data); an empty one (any) is (type, data). Same two words. */
struct go_iface {
	__u64 tab;
	__u64 data;
};

/* Copies at most cap bytes of the string (ptr, len) into dst and returns how many were copied, 0 when the
 * string is empty or unreadable. cap must be a compile-time constant so the verifier can bound the read;
 * the clamp-then-mask form is what older verifiers (5.8) accept for a variable-length read. */
#define go_read_bytes(dst, cap, ptr, len)                                                   \
	({                                                                                  \
		__u64 __n = (len) > 0 ? (__u64)(len) : 0;                                   \
		if (__n > (cap))                                                            \
			__n = (cap);                                                        \
		__n &= 0xffff;                                                              \
		(__n > 0 && __n <= (cap) && bpf_probe_read_user((dst), __n, (const void *)(ptr)) == 0) \
			? (__u32)__n : 0u;                                                  \
	})

/* Reads a Go string header stored at addr (a struct field holding a string) and copies its bytes. */
#define go_read_string_at(dst, cap, addr)                                                   \
	({                                                                                  \
		struct go_string __s = {};                                                  \
		bpf_probe_read_user(&__s, sizeof(__s), (const void *)(addr)) == 0           \
			? go_read_bytes(dst, cap, __s.ptr, __s.len) : 0u;                   \
	})

/* Whether the Go string (ptr, len) in the target is want (a constant of want_len <= 16 bytes). */
static __always_inline int go_string_is(__u64 ptr, __s64 len, const char *want, const int want_len)
{
	char buf[16] = {};
	if (len != want_len || want_len > 16 || bpf_probe_read_user(buf, want_len, (const void *)ptr))
		return 0;
	for (int i = 0; i < want_len; i++)
		if (buf[i] != want[i])
			return 0;
	return 1;
}

#endif
