/**
 * gotel hands back the pages of its own executable that only starting and attaching used. The executable is Bun's
 * runtime with gotel's bundle (~118 MB); a start touches ~40 MB of it (JavaScriptCore, the bundle's bytecode,
 * the code that reads Go binaries and loads eBPF objects), which then stays resident: clean pages of the file, the
 * largest part of an idle agent's RSS (69 MB with one small target, 2026-12-07), and of what a container's memory
 * cgroup is charged. Once attaching has been quiet for a few seconds, the read-only mappings of the executable are
 * paged out (madvise MADV_PAGEOUT); what the agent goes on using (the event loop, the ring buffer's reader, the
 * exporter) is read back at its first use: ~17 MB of code under load, against ~33 MB after a start. Writable
 * mappings are left alone: their written pages are anonymous memory, which paging out would push to swap.
 */
import { readFileSync, readlinkSync } from "node:fs";
import { pageOut } from "./ebpf/libc.ts";
import { log } from "./log.ts";

/** attaching must have been quiet this long (another executable's analysis would read the pages back) */
const QUIET_MS = 3000;

interface Mapping {
  start: number;
  end: number;
}

/** The read-only mappings of the file at `path` in a /proc/PID/maps text. */
export function readOnlyMappingsOf(maps: string, path: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of maps.split("\n")) {
    // start-end perms offset device inode path (matched by path: in a container's overlay file system the device
    // and inode of a mapping are the lower layer's, not what stat says of the file)
    const m = /^([0-9a-f]+)-([0-9a-f]+) r-\S\S \S+ \S+ \d+\s+(.*)$/.exec(line);
    if (m?.[3] === path) out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16) });
  }
  return out;
}

function fileRssKb(): number {
  const m = /RssFile:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) : 0;
}

/** Pages out the read-only mappings of gotel's executable now. */
export function pageOutExecutable(): void {
  const t0 = performance.now();
  const before = fileRssKb();
  const failed = new Set<number>();
  for (const m of readOnlyMappingsOf(readFileSync("/proc/self/maps", "utf8"), readlinkSync("/proc/self/exe"))) {
    const err = pageOut(m.start, m.end - m.start);
    if (err) failed.add(err);
  }
  log.debug("executable's pages handed back", {
    fileMB: `${Math.round(before / 1024)} -> ${Math.round(fileRssKb() / 1024)}`,
    ms: Math.round(performance.now() - t0),
    ...(failed.size ? { errno: [...failed].join(",") } : {}),
  });
}

/** Pages the executable out once nothing has asked to be attached for QUIET_MS; each call restarts the wait. */
export class ExecutablePages {
  private timer: ReturnType<typeof setTimeout> | undefined;

  attaching(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      pageOutExecutable();
    }, QUIET_MS);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
