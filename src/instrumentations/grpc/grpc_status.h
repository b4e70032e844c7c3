/* Reading a gRPC status in the target: grpc's internal/status.Status holds a *spb.Status (the generated
 * google.rpc.Status message of genproto), whose Code and Message are what the peer sees. An error that ends a
 * call is a *status.Error wrapping such a Status when grpc made it; the probes read through that chain
 * whatever the error is, and user space keeps the values only for that type (it names the error's type).
 * Offsets come per process, like every struct field (src/instrumentations/grpc/fields.ts).
 */
#ifndef GOTEL_GRPC_STATUS_H
#define GOTEL_GRPC_STATUS_H

#include <linux/types.h>

#include "go_types.h"
#include "probe.h"

#define GRPC_MESSAGE_MAX 128

struct grpc_status_offsets {
	__u64 error_s;     /* google.golang.org/grpc/internal/status.Error.s (*Status) */
	__u64 status_s;    /* google.golang.org/grpc/internal/status.Status.s (*spb.Status) */
	__u64 spb_code;    /* google.golang.org/genproto/googleapis/rpc/status.Status.Code (int32) */
	__u64 spb_message; /* google.golang.org/genproto/googleapis/rpc/status.Status.Message (string) */
};

/* Code and message of the *status.Status at st (nil: OK, code 0); the message's length is returned. */
static __always_inline __u32 grpc_read_status(const struct grpc_status_offsets *o, __u64 st, __s64 *code, char *message)
{
	*code = 0;
	__u64 spb = read_u64_at(st, o->status_s);
	if (!spb || o->spb_code == GOTEL_OFFSET_ABSENT)
		return 0;
	__s32 c = 0;
	bpf_probe_read_user(&c, sizeof(c), (const void *)(spb + o->spb_code));
	*code = c;
	if (o->spb_message == GOTEL_OFFSET_ABSENT)
		return 0;
	return go_read_string_at(message, GRPC_MESSAGE_MAX, spb + o->spb_message);
}

#endif
