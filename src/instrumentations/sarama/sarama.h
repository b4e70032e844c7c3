/* What Sarama's producer and consumer programs (the .bpf.c files beside this) read alike, beyond ../kafka.h. */
#ifndef GOTEL_SARAMA_H
#define GOTEL_SARAMA_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "go_types.h"
#include "probe.h"
#include "../kafka.h"

/* Go runtime type kinds (abi.Kind, the byte at +23 of a type descriptor since Go 1.0's rtype) */
#define GO_KIND_MASK 0x1f
#define GO_KIND_UINT8 8
#define GO_KIND_SLICE 23
#define GO_KIND_STRING 24
#define GO_TYPE_KIND 23
#define GO_SLICE_TYPE_ELEM 48 /* abi.SliceType.Elem, after the 48-byte Type */

static __always_inline __u8 go_type_kind(__u64 type)
{
	__u8 kind = 0;
	bpf_probe_read_user(&kind, 1, (const void *)(type + GO_TYPE_KIND));
	return kind & GO_KIND_MASK;
}

/* A key the application gave as a sarama.Encoder (iface at addr): its bytes when its dynamic type is a string or
 * a byte slice underneath (StringEncoder, ByteEncoder, or an application's own of those kinds), told apart by the
 * kind in the type descriptor; both data words then start with (pointer, length). Other encoders: no key. */
static __always_inline void sarama_read_encoder_key(struct kafka_message *m, __u64 addr)
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
	kafka_read_key(m->key, &m->key_len, &m->key_size, key.data);
}

#endif
