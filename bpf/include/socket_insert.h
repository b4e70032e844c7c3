/* Socket insertion: a traced process's plaintext HTTP/1 requests carry Traceparent (and Tracestate) on the wire,
 * inserted into the bytes as the socket sends them — the way across hosts where lockdown refuses
 * bpf_probe_write_user (DESIGN.md decision 12; the kernel allows editing a socket's outgoing bytes there).
 *
 *   connect (sock_ops TCP_CONNECT_CB, in the connecting thread): a traced process with an HTTP/1 client
 *     (gotel_link_tgids, GOTEL_LINK_INSERTS) marks its new socket by cookie;
 *   established (sock_ops ACTIVE_ESTABLISHED_CB): a marked socket goes into the SOCKHASH the sk_msg program is
 *     attached to, and its connection into gotel_sock_inserting — only the traced processes' own connections
 *     take the sk_msg path, never another program's;
 *   request: the client files the request's span as pending for its writing goroutine (same_host.h), and the
 *     sys_enter tracepoint (same_host.bpf.c) files it under the connection in gotel_conn_inserts, or counts a
 *     miss when the connection is not one of ours (opened before gotel attached);
 *   send (sk_msg, socket_traceparent.bpf.c): the first bytes sent after that take the span and, when they start
 *     an HTTP/1 request, get the header lines inserted after the request line.
 */
#ifndef GOTEL_SOCKET_INSERT_H
#define GOTEL_SOCKET_INSERT_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#include "trace_context.h"
#include "same_host.h"

/* connection -> the span whose request is sent on it next; lives from the send's system call to its sk_msg run */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct gotel_conn_key);
	__type(value, struct gotel_span_context);
} gotel_conn_inserts SEC(".maps");

/* connection -> tgid: the connections in the SOCKHASH (until they close) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct gotel_conn_key);
	__type(value, __u32);
} gotel_sock_inserting SEC(".maps");

#endif
