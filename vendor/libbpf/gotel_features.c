/* Kernel feature probes libbpf does internally but does not export. */
#include <errno.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* Does the kernel accept uprobe.multi links (6.6+)? Load a two-instruction program with that expected attach
 * type, then ask for a link on "/": a kernel that knows uprobe.multi fails that with EBADF (not a regular
 * file), one that does not with EINVAL. Returns 1 yes, 0 no, -errno when the probe itself could not run. */
__attribute__((visibility("default"))) int gotel_probe_uprobe_multi(void)
{
	LIBBPF_OPTS(bpf_prog_load_opts, load_opts, .expected_attach_type = BPF_TRACE_UPROBE_MULTI);
	LIBBPF_OPTS(bpf_link_create_opts, link_opts);
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	unsigned long offset = 0;
	int prog_fd, link_fd, err;

	prog_fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", insns, 2, &load_opts);
	if (prog_fd < 0)
		return errno == EINVAL ? 0 : -errno;

	link_opts.uprobe_multi.path = "/";
	link_opts.uprobe_multi.offsets = &offset;
	link_opts.uprobe_multi.cnt = 1;
	link_fd = bpf_link_create(prog_fd, -1, BPF_TRACE_UPROBE_MULTI, &link_opts);
	err = errno;
	if (link_fd >= 0)
		close(link_fd);
	close(prog_fd);
	return link_fd < 0 && err == EBADF ? 1 : 0;
}

/* May programs call bpf_probe_write_user (traceparent injection)? Kernel lockdown "integrity" and above, or a
 * missing CAP_SYS_ADMIN, take the helper away. libbpf_probe_bpf_helper() cannot tell: newer kernels refuse it
 * with "program of this type cannot use helper", which libbpf reads as "supported". So load a program that
 * writes 8 bytes to address 0 (never run) and see. Returns 1 yes, 0 no. */
__attribute__((visibility("default"))) int gotel_probe_write_user(void)
{
	struct bpf_insn insns[] = {
		/* *(u64 *)(r10 - 8) = 0 */
		{ .code = BPF_ST | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_10, .off = -8, .imm = 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_2, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_2, .imm = -8 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 8 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_probe_write_user },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", insns, sizeof(insns) / sizeof(insns[0]), NULL);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}
