/* What the Kafka instrumentations' programs (kafka-go/, sarama/) read alike: a message's key and topic, and the
 * W3C traceparent among its headers. */
#ifndef GOTEL_KAFKA_H
#define GOTEL_KAFKA_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "go_types.h"
#include "probe.h"
#include "trace_context.h"

/* The Kafka instrumentations' own reasons for losing spans (gotel_count_own; named in src/instrumentations/index.ts) */
enum kafka_counter {
	KAFKA_COUNTER_BATCH_OVERFLOW = 0, /* messages of one batch past what a probe reads: no span */
	KAFKA_COUNTER_END_UNSEEN = 1,     /* a message's span whose end a probe could not see (Sarama's AsyncProducer: a
					   * failure after the message reached a broker) */
	KAFKA_COUNTER_START_UNSEEN = 2,   /* a message processed without a span: its processing began before gotel
					   * attached (Sarama's consumer) */
};
GOTEL_BTF_TYPE(kafka_counter, enum kafka_counter);

#define KAFKA_TOPIC_MAX 128
#define KAFKA_KEY_MAX 64
#define KAFKA_HEADERS_MAX 8

/* a message's key and topic */
struct kafka_message {
	__u32 key_len;  /* bytes copied */
	__u32 key_size; /* the key's length ([]byte: nil and empty are both 0) */
	__u32 topic_len;
	__u32 pad;
	char key[KAFKA_KEY_MAX];
	char topic[KAFKA_TOPIC_MAX];
};

/* A key whose bytes start at addr as (pointer, length) — a []byte or a string — into key (KAFKA_KEY_MAX bytes):
 * the bytes copied into *len, its length into *size. */
static __always_inline void kafka_read_key(char *key, __u32 *len, __u32 *size, __u64 addr)
{
	struct go_string k = {};
	*len = 0;
	*size = 0;
	if (bpf_probe_read_user(&k, sizeof(k), (const void *)addr))
		return;
	*size = k.len > 0 ? (__u32)k.len : 0;
	*len = go_read_bytes(key, KAFKA_KEY_MAX, k.ptr, k.len);
}

/* The traceparent among a message's first KAFKA_HEADERS_MAX headers parsed into sc; 0 when it has a valid one.
 * headers: the address of the message's []Header, whose elements (by value, or by pointer) have a key (a string
 * or a []byte) at key_off and a []byte value at value_off, the last field (stride: value_off + 24).
 * buf: GOTEL_TRACEPARENT_LEN bytes of scratch. */
static __always_inline int kafka_read_traceparent(__u64 headers, int by_pointer, __u64 key_off, __u64 value_off,
						  char *buf, struct gotel_span_context *sc)
{
	struct go_slice h = {};
	if (bpf_probe_read_user(&h, sizeof(h), (const void *)headers))
		return -1;
	__u64 stride = by_pointer ? 8 : value_off + sizeof(struct go_slice);
	for (int i = 0; i < KAFKA_HEADERS_MAX; i++) {
		if (i >= h.len)
			break;
		__u64 at = h.ptr + i * stride;
		if (by_pointer)
			at = read_u64_at(at, 0);
		struct go_string k = {};
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
