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
