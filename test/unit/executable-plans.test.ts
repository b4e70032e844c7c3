/**
 * Plans are made once per executable file, keyed by its identity (device, inode, size, modification time):
 * processes of one binary share them, and a binary replaced at the same path is analysed again.
 */
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PlanCache, type ExecutablePlans } from "../../src/probes/executable-plans.ts";

const dir = mkdtempSync(join(tmpdir(), "gotel-plans-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function counting(): { cache: PlanCache; made: string[] } {
  const made: string[] = [];
  const cache = new PlanCache((file) => {
    made.push(file);
    return { goVersion: "1.26.8", buildGoVersion: "go1.26.8", ready: [], skipped: [], lowestLoad: 0x400000 } satisfies ExecutablePlans;
  }, 2);
  return { cache, made };
}

test("the same file is planned once, through any path to it (a hard link, as /proc/PID/exe is)", () => {
  const { cache, made } = counting();
  const a = join(dir, "a");
  writeFileSync(a, "one");
  copyFileSync(a, join(dir, "copy")); // same bytes, another inode: another file
  expect(cache.get(a).cached).toBe(false);
  expect(cache.get(a).cached).toBe(true);
  expect(cache.get(join(dir, "copy")).cached).toBe(false);
  expect(made).toEqual([a, join(dir, "copy")]);
});

test("a binary replaced at the same path (new inode), or rewritten in place (new size or time), is planned again", () => {
  const { cache, made } = counting();
  const p = join(dir, "svc");
  writeFileSync(p, "v1");
  cache.get(p);
  writeFileSync(join(dir, "svc.new"), "v2");
  renameSync(join(dir, "svc.new"), p); // how deploys replace binaries
  expect(cache.get(p).cached).toBe(false);
  writeFileSync(p, "v3 longer"); // in place: same inode, new size
  expect(cache.get(p).cached).toBe(false);
  utimesSync(p, new Date(), new Date(Date.now() + 5000)); // same size, new modification time
  expect(cache.get(p).cached).toBe(false);
  expect(cache.get(p).cached).toBe(true);
  expect(made).toHaveLength(4);
});

test("a file that cannot be planned is not cached; the cache keeps the most recent files only", () => {
  let fail = true;
  const cache = new PlanCache(() => {
    if (fail) throw new Error("not a Go program");
    return { goVersion: "1.26.8", buildGoVersion: "go1.26.8", ready: [], skipped: [], lowestLoad: 0 };
  }, 2);
  const files = ["x", "y", "z"].map((n) => join(dir, n));
  for (const f of files) writeFileSync(f, f);
  expect(() => cache.get(files[0]!)).toThrow("not a Go program");
  expect(cache.size).toBe(0);
  fail = false;
  for (const f of files) cache.get(f);
  expect(cache.size).toBe(2);
  expect(cache.get(files[2]!).cached).toBe(true);
  expect(cache.get(files[0]!).cached).toBe(false); // the oldest went
});
