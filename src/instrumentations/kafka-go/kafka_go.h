/* What kafka-go's producer and consumer programs (the .bpf.c files beside this) read alike. */
#ifndef GOTEL_KAFKA_GO_H
#define GOTEL_KAFKA_GO_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "go_types.h"

#define KAFKA_TOPIC_MAX 128
#define KAFKA_KEY_MAX 64

/* A message's key ([]byte at addr) into key (KAFKA_KEY_MAX bytes): the bytes copied into *len, its length into
 * *size (nil and empty are both 0). */
static __always_inline void kafka_read_key(char *key, __u32 *len, __u32 *size, __u64 addr)
{
	struct go_slice k = {};
	*len = 0;
	*size = 0;
	if (bpf_probe_read_user(&k, sizeof(k), (const void *)addr))
		return;
	*size = k.len > 0 ? (__u32)k.len : 0;
	*len = go_read_bytes(key, KAFKA_KEY_MAX, k.ptr, k.len);
}

#endif
