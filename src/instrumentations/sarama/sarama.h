/* What Sarama's producer and consumer programs (the .bpf.c files beside this) read alike. */
#ifndef GOTEL_SARAMA_H
#define GOTEL_SARAMA_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "go_types.h"
#include "probe.h"
#include "trace_context.h"

#define SARAMA_TOPIC_MAX 128
#define SARAMA_KEY_MAX 64
#define SARAMA_HEADERS_MAX 8

/* Go runtime type kinds (abi.Kind, the byte at +23 of a type descriptor since Go 1.0's rtype) */
#define GO_KIND_MASK 0x1f
#define GO_KIND_UINT8 8
#define GO_KIND_SLICE 23
#define GO_KIND_STRING 24
#define GO_TYPE_KIND 23
#define GO_SLICE_TYPE_ELEM 48 /* abi.SliceType.Elem, after the 48-byte Type */

/* a message's key and topic, as both ends read them */
struct sarama_message {
	__u32 key_len;  /* bytes copied */
	__u32 key_size; /* the key's length */
	__u32 topic_len;
	__u32 pad;
	char key[SARAMA_KEY_MAX];
	char topic[SARAMA_TOPIC_MAX];
};

static __always_inline __u8 go_type_kind(__u64 type)
{
	__u8 kind = 0;
	bpf_probe_read_user(&kind, 1, (const void *)(type + GO_TYPE_KIND));
	return kind & GO_KIND_MASK;
}

/* A key the application gave as a sarama.Encoder (iface at addr): its bytes when its dynamic type is a string or
 * a byte slice underneath (StringEncoder, ByteEncoder, or an application's own of those kinds), told apart by the
 * kind in the type descriptor; both data words then start with (pointer, length). Other encoders: no key. */
static __always_inline void sarama_read_encoder_key(struct sarama_message *m, __u64 addr)
{
	struct go_iface key = {};
	m->key_len = 0;
	m->key_size = 0;
	if (bpf_probe_read_user(&key, sizeof(key), (const void *)addr) || !key.tab || !key.data)
		return;
	__u64 type = read_u64_at(key.tab, 8); /* itab._type */
	__u8 kind = go_type_kind(type);
	if (kind == GO_KIND_SLICE)
		kind = go_type_kind(read_u64_at(type, GO_SLICE_TYPE_ELEM)) == GO_KIND_UINT8 ? GO_KIND_STRING : 0;
	if (kind != GO_KIND_STRING)
		return;
	struct go_string s = {};
	if (bpf_probe_read_user(&s, sizeof(s), (const void *)key.data))
		return;
	m->key_size = s.len > 0 ? (__u32)s.len : 0;
	m->key_len = go_read_bytes(m->key, SARAMA_KEY_MAX, s.ptr, s.len);
}

/* The traceparent among a message's first SARAMA_HEADERS_MAX headers (a []RecordHeader{Key, Value []byte} at
 * headers, by value for a ProducerMessage, by pointer for a ConsumerMessage) parsed into sc; 0 when it has a
 * valid one. buf: GOTEL_TRACEPARENT_LEN bytes of scratch. */
static __always_inline int sarama_read_traceparent(__u64 headers, int by_pointer, __u64 key_off, __u64 value_off,
						   char *buf, struct gotel_span_context *sc)
{
	struct go_slice h = {};
	if (bpf_probe_read_user(&h, sizeof(h), (const void *)headers))
		return -1;
	__u64 stride = by_pointer ? 8 : value_off + sizeof(struct go_slice);
	for (int i = 0; i < SARAMA_HEADERS_MAX; i++) {
		if (i >= h.len)
			break;
		__u64 at = h.ptr + i * stride;
		if (by_pointer)
			at = read_u64_at(at, 0);
		struct go_slice k = {};
		if (!at || bpf_probe_read_user(&k, sizeof(k), (const void *)(at + key_off)))
			return -1;
		if (!go_string_is(k.ptr, k.len, "traceparent", 11))
			continue;
		struct go_slice v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (const void *)(at + value_off)))
			return -1;
		__u32 n = go_read_bytes(buf, GOTEL_TRACEPARENT_LEN, v.ptr, v.len);
		return n == GOTEL_TRACEPARENT_LEN ? gotel_parse_traceparent(buf, n, sc) : -1;
	}
	return -1;
}

#endif
