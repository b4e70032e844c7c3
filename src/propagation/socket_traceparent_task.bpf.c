/* Socket insertion before Linux 6.10, where a sock_ops program may not ask which process connects: the same
 * programs, reading the connecting task's tgid instead (socket_traceparent.bpf.c says why this is an object of its
 * own). */
#define SOCKET_TRACEPARENT_FROM_TASK 1
#include "socket_traceparent.bpf.c"
