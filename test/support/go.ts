/** Builds Go programs from test/fixtures/ for the tests (never committed binaries), cached in build/fixtures. */
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");

export interface GoBuild {
  /** e.g. "1.23.5"; default: the go on PATH */
  goVersion?: string;
  goarch?: "amd64" | "arm64";
  stripped?: boolean;
  pie?: boolean;
  cgo?: boolean;
}

function variant(b: GoBuild): string {
  return [b.goVersion ?? "local", b.goarch ?? "amd64", b.stripped ? "stripped" : "symbols", b.pie ? "pie" : "exe", b.cgo ? "cgo" : "nocgo"].join("-");
}

export function buildGoFixture(name: string, b: GoBuild = {}): string {
  const src = join(ROOT, "test/fixtures", name);
  const outDir = join(ROOT, "build/fixtures", `${name}-${variant(b)}`);
  const out = join(outDir, name);
  const newestSrc = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs));
  if (existsSync(out) && statSync(out).mtimeMs >= newestSrc) return out;
  mkdirSync(outDir, { recursive: true });
  const args = ["go", "build", "-o", out];
  if (b.stripped) args.push("-ldflags=-s -w");
  if (b.pie) args.push("-buildmode=pie");
  const r = Bun.spawnSync(args, {
    cwd: src,
    env: {
      ...process.env,
      GOTOOLCHAIN: b.goVersion ? `go${b.goVersion}` : "local",
      GOARCH: b.goarch ?? "amd64",
      CGO_ENABLED: b.cgo ? "1" : "0",
      GOFLAGS: "-mod=mod",
    },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build of test/fixtures/${name} (${variant(b)}) failed: ${r.stderr.toString()}`);
  return out;
}
