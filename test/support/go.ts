/** Builds Go programs from test/fixtures/ for the tests (never committed binaries), cached in build/fixtures. */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ElfFile } from "../../src/gobin/elf.ts";

export const ROOT = resolve(import.meta.dir, "../..");

export interface GoBuild {
  /** e.g. "1.23.12" (fetched through the Go module proxy by GOTOOLCHAIN); default: the go on PATH */
  goVersion?: string;
  goarch?: "amd64" | "arm64";
  /** -ldflags=-s -w: no .symtab, no DWARF */
  stripped?: boolean;
  pie?: boolean;
  cgo?: boolean;
  /** -tags */
  tags?: string[];
  /** -modfile: another go.mod in the fixture's directory (e.g. an older version of a library) */
  modfile?: string;
}

export function variantName(b: GoBuild): string {
  return [b.goVersion ?? "local", b.goarch ?? "amd64", b.stripped ? "stripped" : "symbols", b.pie ? "pie" : "exe", b.cgo ? "cgo" : "nocgo", ...(b.tags ?? []), ...(b.modfile ? [b.modfile.replace(/\.mod$/, "")] : [])].join("-");
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" })) newest = Math.max(newest, statSync(join(dir, f)).mtimeMs);
  return newest;
}

/**
 * The go command: the one on PATH, unless scripts/setup.sh had to fetch a newer toolchain into
 * build/go-toolchain/ because the machine's go is older than 1.21 (Debian 12's golang-go is 1.19).
 */
export function goCommand(): string {
  const dir = join(ROOT, "build/go-toolchain");
  if (!existsSync(dir)) return "go";
  const newest = readdirSync(dir).filter((d) => existsSync(join(dir, d, "bin/go"))).sort().at(-1);
  return newest ? join(dir, newest, "bin/go") : "go";
}

/** Builds (or reuses) test/fixtures/<name> in the given way; returns the executable's path. */
export function buildGoFixture(name: string, b: GoBuild = {}): string {
  const src = join(ROOT, "test/fixtures", name);
  const outDir = join(ROOT, "build/fixtures", `${name}-${variantName(b)}`);
  const out = join(outDir, name);
  const sourceTime = newestMtime(src);
  // whole milliseconds: utimesSync below keeps no more, and a checkout's files carry fractions of one
  if (existsSync(out) && Math.floor(statSync(out).mtimeMs) >= Math.floor(sourceTime)) return out;
  mkdirSync(outDir, { recursive: true });
  // build next to the target and rename: several test files (and processes) may build the same variant at once
  const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const args = [goCommand(), "build", "-o", tmp];
  if (b.stripped) args.push("-ldflags=-s -w");
  if (b.pie) args.push("-buildmode=pie");
  if (b.tags?.length) args.push(`-tags=${b.tags.join(",")}`);
  if (b.modfile) args.push(`-modfile=${b.modfile}`);
  const r = Bun.spawnSync(args, {
    cwd: src,
    env: {
      ...process.env,
      // "auto" for the default build: the module's go line (1.22 for the HTTP fixtures) may be newer than go itself
      GOTOOLCHAIN: b.goVersion ? `go${b.goVersion}` : "auto",
      GOARCH: b.goarch ?? "amd64",
      CGO_ENABLED: b.cgo ? "1" : "0",
      GOFLAGS: "-mod=mod",
    },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build of test/fixtures/${name} (${variantName(b)}) failed: ${r.stderr.toString()}`);
  // dated as the sources it was built from: a source edited during the build makes it stale, not current
  utimesSync(tmp, new Date(sourceTime), new Date(sourceTime));
  renameSync(tmp, out);
  return out;
}

/**
 * A copy of a Go executable whose build info claims another Go version (e.g. a patch release the offsets table
 * does not have), written next to it. Go >= 1.18 keeps the version inline in `.go.buildinfo`, after the 32-byte
 * header, as a uvarint length and the bytes, followed by the module information likewise: the version is
 * rewritten and the module information moved to follow it. Nothing else in the binary changes.
 */
export function withGoVersion(exe: string, goVersion: string): string {
  const bytes = Buffer.from(readFileSync(exe));
  const info = ElfFile.parse(new Uint8Array(bytes), exe).section(".go.buildinfo");
  if (!info) throw new Error(`${exe}: no .go.buildinfo section`);
  const blob = bytes.subarray(info.offset, info.offset + info.size);
  const header = blob.indexOf(Buffer.from("\xff Go buildinf:", "latin1"));
  if (header < 0 || (blob[header + 15]! & 2) === 0) throw new Error(`${exe}: no inline build info (Go >= 1.18)`);
  const uvarint = (at: number): [value: number, size: number] => {
    let v = 0;
    for (let i = 0; ; i++) {
      v += (blob[at + i]! & 0x7f) * 2 ** (7 * i);
      if (blob[at + i]! < 0x80) return [v, i + 1];
    }
  };
  const at = header + 32;
  const [oldLen, oldSize] = uvarint(at);
  const modinfoAt = at + oldSize + oldLen;
  const [modLen, modSize] = uvarint(modinfoAt);
  const modinfo = Buffer.from(blob.subarray(modinfoAt, modinfoAt + modSize + modLen));
  const version = Buffer.from(goVersion);
  if (version.length >= 0x80 || at + 1 + version.length + modinfo.length > blob.length) throw new Error(`${exe}: no room for ${goVersion}`);
  blob.fill(0, at, modinfoAt + modinfo.length);
  blob[at] = version.length;
  version.copy(blob, at + 1);
  modinfo.copy(blob, at + 1 + version.length);
  const out = `${exe}-as-${goVersion}`;
  const tmp = `${out}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, bytes, { mode: 0o755 });
  renameSync(tmp, out);
  return out;
}
