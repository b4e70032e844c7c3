// SPDX-License-Identifier: Apache-2.0
/*
 * gotel_kernel_btf.c — where members of the running kernel's structs are, from its BTF, for eBPF programs that
 * read kernel memory at offsets set as .rodata constants instead of by CO-RE (src/ebpf/kernel-btf.ts says why).
 *
 * One pass over the type section records where each type starts; a path ("sock.__sk_common.skc_dport") is then
 * followed as C would: anonymous structs and unions looked through, typedefs and qualifiers followed, the first
 * complete struct of a name taken. In C because it runs on the thread a start waits for, and so that the kernel's
 * ~5 MB never reach the JS heap. Linux 6.16+ maps the file (~0.5 ms here); before, it is read, which sysfs does a
 * page per call (~7 ms); the pass itself takes ~1 ms.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/btf.h>

#define GOTEL_API __attribute__((visibility("default")))

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define POINTER_SIZE 8 /* 64-bit kernels only (amd64, arm64) */
#define MAX_DEPTH 16

/* What could not be followed (returned positive; -errno for a failed read). Mirrored by src/ebpf/kernel-btf.ts. */
enum {
	GOTEL_BTF_CORRUPT = 1,   /* a header or record that runs past the data */
	GOTEL_BTF_UNKNOWN_KIND,  /* a type kind newer than this code */
	GOTEL_BTF_NO_STRUCT,     /* the path's struct */
	GOTEL_BTF_NO_MEMBER,     /* one of its members (*failed_member says which) */
	GOTEL_BTF_BITFIELD,      /* a member with no byte offset */
	GOTEL_BTF_NO_SIZE,       /* the last member's type has no size */
};

struct kernel_btf {
	const uint8_t *types;
	uint32_t types_len;
	const char *strs;
	uint32_t strs_len;
	uint32_t *at; /* byte offset into types of each type id's record (id 0: void) */
	uint32_t count;
};

/* The running kernel's BTF: mapped (*mapped set) where the kernel allows it (6.16+), else read into the heap. */
static int vmlinux_btf(uint8_t **out, size_t *len, int *mapped)
{
	int fd = open(VMLINUX_BTF, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int sized = fstat(fd, &st) == 0 && st.st_size > 0;
	size_t cap = sized ? (size_t)st.st_size : 8u << 20;
	if (sized) {
		void *m = mmap(NULL, cap, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m != MAP_FAILED) {
			close(fd);
			*out = m;
			*len = cap;
			*mapped = 1;
			return 0;
		}
	}
	uint8_t *buf = malloc(cap);
	size_t n = 0;
	int err = buf ? 0 : -ENOMEM;
	while (!err) {
		if (n == cap) {
			uint8_t *bigger = realloc(buf, cap *= 2);
			if (!bigger) {
				err = -ENOMEM;
				break;
			}
			buf = bigger;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = -errno;
		else if (r == 0)
			break;
		else
			n += (size_t)r;
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len = n;
	*mapped = 0;
	return 0;
}

/* bytes after a record's struct btf_type, or -1 for a kind this code does not know */
static long extra_bytes(uint32_t kind, uint32_t vlen)
{
	switch (kind) {
	case BTF_KIND_INT: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG:
		return 4;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_DATASEC: case BTF_KIND_ENUM64:
		return 12L * vlen;
	case BTF_KIND_ENUM: case BTF_KIND_FUNC_PROTO:
		return 8L * vlen;
	case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT: case BTF_KIND_TYPE_TAG:
		return 0;
	default:
		return -1;
	}
}

static int index_types(struct kernel_btf *k, const uint8_t *data, size_t len)
{
	struct btf_header h;
	if (len < sizeof(h))
		return GOTEL_BTF_CORRUPT;
	memcpy(&h, data, sizeof(h));
	if (h.magic != BTF_MAGIC || h.hdr_len > len)
		return GOTEL_BTF_CORRUPT;
	uint64_t types_at = (uint64_t)h.hdr_len + h.type_off, strs_at = (uint64_t)h.hdr_len + h.str_off;
	if (types_at + h.type_len > len || strs_at + h.str_len > len || h.str_len == 0 || (types_at & 3))
		return GOTEL_BTF_CORRUPT;
	k->types = data + types_at;
	k->types_len = h.type_len;
	k->strs = (const char *)data + strs_at;
	k->strs_len = h.str_len;
	k->at = malloc((h.type_len / sizeof(struct btf_type) + 2) * sizeof(uint32_t));
	if (!k->at)
		return -ENOMEM;
	uint32_t id = 1;
	for (uint32_t p = 0; p < k->types_len; id++) {
		if (k->types_len - p < sizeof(struct btf_type))
			return GOTEL_BTF_CORRUPT;
		const struct btf_type *t = (const void *)(k->types + p);
		long extra = extra_bytes(BTF_INFO_KIND(t->info), BTF_INFO_VLEN(t->info));
		if (extra < 0)
			return GOTEL_BTF_UNKNOWN_KIND;
		if ((uint64_t)p + sizeof(*t) + extra > k->types_len)
			return GOTEL_BTF_CORRUPT;
		k->at[id] = p;
		p += sizeof(*t) + extra;
	}
	k->count = id;
	return 0;
}

static const struct btf_type *type_of(const struct kernel_btf *k, uint32_t id)
{
	return id > 0 && id < k->count ? (const void *)(k->types + k->at[id]) : NULL;
}

/* whether string name_off is name (len bytes, not NUL-terminated) */
static int name_is(const struct kernel_btf *k, uint32_t name_off, const char *name, size_t len)
{
	return name_off < k->strs_len && k->strs_len - name_off > len && memcmp(k->strs + name_off, name, len) == 0 &&
	       k->strs[name_off + len] == 0;
}

/* follows typedefs and qualifiers; 0 when the chain breaks */
static uint32_t resolve(const struct kernel_btf *k, uint32_t id)
{
	for (int depth = 0; depth < 32; depth++) {
		const struct btf_type *t = type_of(k, id);
		if (!t)
			return 0;
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
			id = t->type;
			break;
		default:
			return id;
		}
	}
	return 0;
}

static uint32_t find_struct(const struct kernel_btf *k, const char *name, size_t len)
{
	for (uint32_t id = 1; id < k->count; id++) {
		const struct btf_type *t = type_of(k, id);
		if (BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT && BTF_INFO_VLEN(t->info) > 0 && name_is(k, t->name_off, name, len))
			return id;
	}
	return 0;
}

/* member `name` of struct or union `id`, looking through anonymous members: its byte offset and type; 0 or an error */
static int find_member(const struct kernel_btf *k, uint32_t id, const char *name, size_t len, int depth, uint32_t *offset, uint32_t *type)
{
	const struct btf_type *t = type_of(k, resolve(k, id));
	if (!t || depth > MAX_DEPTH || (BTF_INFO_KIND(t->info) != BTF_KIND_STRUCT && BTF_INFO_KIND(t->info) != BTF_KIND_UNION))
		return GOTEL_BTF_NO_MEMBER;
	const struct btf_member *m = (const void *)(t + 1);
	int bitfields = BTF_INFO_KFLAG(t->info);
	for (uint32_t i = 0; i < BTF_INFO_VLEN(t->info); i++, m++) {
		uint32_t bit_offset = bitfields ? BTF_MEMBER_BIT_OFFSET(m->offset) : m->offset;
		if (m->name_off == 0) {
			uint32_t inner;
			int err = find_member(k, m->type, name, len, depth + 1, &inner, type);
			if (err != GOTEL_BTF_NO_MEMBER) {
				*offset = bit_offset / 8 + inner;
				return err;
			}
		} else if (name_is(k, m->name_off, name, len)) {
			if ((bitfields && BTF_MEMBER_BITFIELD_SIZE(m->offset)) || bit_offset % 8)
				return GOTEL_BTF_BITFIELD;
			*offset = bit_offset / 8;
			*type = m->type;
			return 0;
		}
	}
	return GOTEL_BTF_NO_MEMBER;
}

static int size_of(const struct kernel_btf *k, uint32_t id, int depth, uint32_t *size)
{
	const struct btf_type *t = type_of(k, resolve(k, id));
	if (!t || depth > MAX_DEPTH)
		return GOTEL_BTF_NO_SIZE;
	switch (BTF_INFO_KIND(t->info)) {
	case BTF_KIND_PTR:
		*size = POINTER_SIZE;
		return 0;
	case BTF_KIND_ARRAY: {
		const struct btf_array *a = (const void *)(t + 1);
		uint32_t elem;
		int err = size_of(k, a->type, depth + 1, &elem);
		*size = elem * a->nelems;
		return err;
	}
	case BTF_KIND_INT: case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_ENUM: case BTF_KIND_ENUM64: case BTF_KIND_FLOAT:
		*size = t->size;
		return 0;
	default:
		return GOTEL_BTF_NO_SIZE;
	}
}

/* one path, "struct.member[.member…]": its offset from the struct's start and its size; *last: the struct of the
 * path before, kept so that paths of one struct search for it once */
static int follow(const struct kernel_btf *k, const char *path, const char **last, uint32_t *last_id, int32_t *out,
		  int32_t *failed_member)
{
	const char *dot = strchr(path, '.');
	if (!dot)
		return GOTEL_BTF_NO_MEMBER;
	size_t len = dot - path;
	if (!*last || strncmp(*last, path, len + 1) != 0) {
		*last = path;
		*last_id = find_struct(k, path, len);
	}
	uint32_t id = *last_id, offset = 0;
	if (!id)
		return GOTEL_BTF_NO_STRUCT;
	for (int32_t n = 0; dot; n++) {
		const char *name = dot + 1;
		dot = strchr(name, '.');
		uint32_t at, type;
		int err = find_member(k, id, name, dot ? (size_t)(dot - name) : strlen(name), 0, &at, &type);
		if (err) {
			*failed_member = n;
			return err;
		}
		offset += at;
		id = type;
	}
	uint32_t size;
	int err = size_of(k, id, 0, &size);
	out[0] = (int32_t)offset;
	out[1] = (int32_t)size;
	return err;
}

/*
 * Finds n member paths (NUL-separated, one after another in paths) in the BTF btf[0..len), or the running
 * kernel's when btf is NULL. out: (offset, size) per path. Returns 0; a GOTEL_BTF_* code with *failed the index
 * of the path (and *failed_member the member's index in it, for GOTEL_BTF_NO_MEMBER); or -errno.
 */
GOTEL_API int gotel_btf_fields(const void *btf, size_t len, const char *paths, uint32_t n, int32_t *out, int32_t *failed,
			       int32_t *failed_member)
{
	uint8_t *owned = NULL;
	int mapped = 0;
	if (!btf) {
		int err = vmlinux_btf(&owned, &len, &mapped);
		if (err)
			return err;
		btf = owned;
	}
	struct kernel_btf k = {0};
	int err = index_types(&k, btf, len);
	*failed = -1;
	*failed_member = -1;
	const char *last = NULL;
	uint32_t last_id = 0;
	for (uint32_t i = 0; !err && i < n; i++, paths += strlen(paths) + 1) {
		err = follow(&k, paths, &last, &last_id, out + 2 * i, failed_member);
		if (err)
			*failed = (int32_t)i;
	}
	free(k.at);
	if (mapped)
		munmap(owned, len);
	else
		free(owned);
	return err;
}
