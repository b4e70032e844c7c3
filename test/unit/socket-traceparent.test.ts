/** Where socket insertion attaches its sock_ops program: the cgroup v2 root, read from mountinfo. */
import { expect, test } from "bun:test";
import { cgroup2Root } from "../../src/propagation/socket-traceparent.ts";

const line = (id: number, root: string, mount: string, fs: string) => `${id} 1 0:${id} ${root} ${mount} rw,relatime shared:${id} - ${fs} ${fs} rw`;

test("the hybrid hierarchy's unified mount, not the v1 controllers beside it", () => {
  const info = [
    line(24, "/", "/sys/fs/cgroup", "tmpfs"),
    line(25, "/", "/sys/fs/cgroup/cpu", "cgroup"),
    line(35, "/", "/sys/fs/cgroup/unified", "cgroup2"),
  ].join("\n");
  expect(cgroup2Root(info)).toBe("/sys/fs/cgroup/unified");
});

test("a pure v2 host; a bind mount of a sub-cgroup is not the root; octal escapes in the path are decoded", () => {
  expect(cgroup2Root([line(30, "/system.slice", "/mnt/sub", "cgroup2"), line(31, "/", "/sys/fs/cgroup", "cgroup2")].join("\n"))).toBe("/sys/fs/cgroup");
  expect(cgroup2Root(line(31, "/", "/run/my\\040cgroups", "cgroup2"))).toBe("/run/my cgroups");
});

test("none mounted", () => {
  expect(cgroup2Root(line(25, "/", "/sys/fs/cgroup/cpu", "cgroup"))).toBeUndefined();
});
