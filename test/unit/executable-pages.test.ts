import { expect, test } from "bun:test";
import { readOnlyMappingsOf } from "../../src/executable-pages.ts";

const MAPS = `00200000-01a39000 r--p 00000000 fe:01 1234 /opt/gotel/gotel
01a40000-0684a000 r-xp 01838000 fe:01 1234 /opt/gotel/gotel
06867000-0726a000 rw-p 06665000 fe:01 1234 /opt/gotel/gotel
2d454400000-2d494400000 rw-p 00000000 00:00 0 
7fe3ccf79000-7fe3cd77a000 r--s 00000000 00:0f 2050 anon_inode:bpf-map
7fe40ea27000-7fe40eb7d000 r-xp 00026000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
7fe40ec00000-7fe40ec01000 r--p 00000000 fe:01 77 /opt/gotel/gotel-old
7fe40ec10000-7fe40ec11000 r--p 00000000 fe:01 78 /opt/my dir/gotel (deleted)
`;

test("the read-only mappings of that path only: not its writable one, not other files or anonymous memory", () => {
  expect(readOnlyMappingsOf(MAPS, "/opt/gotel/gotel")).toEqual([
    { start: 0x200000, end: 0x1a39000 },
    { start: 0x1a40000, end: 0x684a000 },
  ]);
});

test("a path with a space, of an executable replaced while it runs", () => {
  expect(readOnlyMappingsOf(MAPS, "/opt/my dir/gotel (deleted)")).toEqual([{ start: 0x7fe40ec10000, end: 0x7fe40ec11000 }]);
  expect(readOnlyMappingsOf(MAPS, "/nowhere")).toEqual([]);
});
