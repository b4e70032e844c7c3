import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BuildInfo, BuildInfoError, type GoModule, goRelease, readBuildInfo } from "../../src/gobin/buildinfo.ts";
import { lookupOffsetInterpolated } from "../../src/offsets/table.ts";
import { ElfFile } from "../../src/gobin/elf.ts";
import { GotelError } from "../../src/errors.ts";
import { buildGoFixture, ROOT, variantName } from "../support/go.ts";
import { sampleVariants } from "../support/matrix.ts";

function load(path: string): ElfFile {
  return ElfFile.parse(new Uint8Array(readFileSync(path)), path);
}

/** What `go version -m` prints, parsed independently of the code under test. */
function goVersionM(path: string): BuildInfo {
  const r = Bun.spawnSync(["go", "version", "-m", path], { env: { ...process.env, GOTOOLCHAIN: "local" }, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`go version -m ${path}: ${r.stderr.toString()}`);
  const [first, ...lines] = r.stdout.toString().split("\n");
  const info: BuildInfo = { goVersion: first!.slice(path.length + 2), path: "", main: { path: "", version: "" }, deps: [], settings: [] };
  let last: GoModule | undefined;
  const mod = (cols: string[]): GoModule => ({ path: cols[0]!, version: cols[1]!, ...(cols[2] ? { sum: cols[2] } : {}) });
  for (const line of lines) {
    if (!line.startsWith("\t")) continue;
    const [word, ...cols] = line.slice(1).split("\t");
    if (word === "path") info.path = cols.join("\t");
    else if (word === "mod") info.main = last = mod(cols);
    else if (word === "dep") info.deps.push((last = mod(cols)));
    else if (word === "=>") last!.replace = mod(cols);
    else if (word === "build") {
      const kv = cols.join("\t");
      const eq = kv.indexOf("=");
      const raw = kv.slice(eq + 1);
      info.settings.push([kv.slice(0, eq), raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
    }
  }
  return info;
}

/** Builds a Go program with a given toolchain into build/fixtures (cached), for the cases buildGoFixture does not cover. */
function buildWith(dir: string, outName: string, goVersion: string): string {
  const out = join(ROOT, "build/fixtures", outName, "prog");
  if (existsSync(out)) return out;
  mkdirSync(join(ROOT, "build/fixtures", outName), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const r = Bun.spawnSync(["go", "build", "-o", tmp], {
    cwd: dir,
    env: { ...process.env, GOTOOLCHAIN: `go${goVersion}`, CGO_ENABLED: "0", GOARCH: "amd64", GOFLAGS: "-mod=mod" },
    stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`go build in ${dir} with go${goVersion} failed: ${r.stderr.toString()}`);
  renameSync(tmp, out);
  return out;
}

describe("build info equals `go version -m`", () => {
  for (const v of sampleVariants()) {
    test(variantName(v), () => {
      const path = buildGoFixture("gobin-sample", v);
      const info = readBuildInfo(load(path));
      expect(info).toEqual(goVersionM(path));
      // the sample's replacements survive: a version replacement and a directory replacement
      expect(info.deps.find((d) => d.path === "github.com/go-chi/chi/v5")?.replace?.version).toBe("v5.0.11");
      expect(info.deps.find((d) => d.path === "gotel.test/localmod")?.replace).toEqual({ path: "./localmod", version: "(devel)" });
      expect(info.goVersion).toBe(`go${v.goVersion}`);
    });
  }

  test("Go 1.17: the old format, pointers to string headers", () => {
    const path = buildWith(join(ROOT, "test/fixtures/go117-hello"), "go117-hello-1.17.13-amd64", "1.17.13");
    const elf = load(path);
    const blob = elf.sectionData(elf.section(".go.buildinfo")!);
    expect(blob[14]).toBe(8); // pointer size
    expect(blob[15]! & 2).toBe(0); // not the inline format
    const info = readBuildInfo(elf);
    expect(info).toEqual(goVersionM(path));
    expect(info.goVersion).toBe("go1.17.13");
    expect(info.main).toEqual({ path: "gotel.test/go117hello", version: "(devel)" });
  });

  test("a dirty VCS checkout: +dirty version and vcs.modified=true", () => {
    const out = join(ROOT, "build/fixtures/dirty-vcs-1.24.13-amd64/prog");
    let path = out;
    if (!existsSync(out)) {
      const dir = mkdtempSync(join(tmpdir(), "gotel-dirty-"));
      try {
        const git = (...args: string[]) => {
          const r = Bun.spawnSync(["git", "-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, stderr: "pipe" });
          if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
        };
        writeFileSync(join(dir, "go.mod"), "module example.com/dirty\n\ngo 1.24\n");
        writeFileSync(join(dir, "main.go"), "package main\n\nfunc main() {}\n");
        git("init", "-q");
        git("add", ".");
        git("commit", "-q", "-m", "init");
        writeFileSync(join(dir, "main.go"), "package main\n\nfunc main() { println() }\n");
        path = buildWith(dir, "dirty-vcs-1.24.13-amd64", "1.24.13");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const info = readBuildInfo(load(path));
    expect(info).toEqual(goVersionM(path));
    expect(info.main.version).toMatch(/^v0\.0\.0-\d{14}-[0-9a-f]{12}\+dirty$/);
    expect(info.settings).toContainEqual(["vcs.modified", "true"]);
  });
});

describe("the Go release a version string names", () => {
  test.each([
    ["go1.23.12", "1.23.12", false],
    ["go1.21.0", "1.21.0", false],
    ["go1.20", "1.20", false],
    ["go1.23.4 X:nocoverageredesign", "1.23.4", false],
    ["go1.24.2 X:noswissmap,nosynctest", "1.24.2", false],
    ["devel go1.22-8a0e2f6f4d Mon Oct 2 16:42:47 2023 +0000", "1.22", true],
    ["go1.25-devel_0afbeb5102 Mon Jun 2 09:31:15 2025 -0700", "1.25", true],
  ])("%s -> %s (devel: %p)", (raw, version, devel) => {
    expect(goRelease(raw)).toEqual({ version, devel });
  });

  test("not a Go version: undefined", () => {
    expect(goRelease("gccgo (GCC) 12.2.0")).toBeUndefined();
    expect(goRelease("")).toBeUndefined();
  });

  test("a development toolchain's std version is in no table row, and is not interpolated", () => {
    for (const v of ["1.22-devel", "1.25-devel"]) {
      expect(lookupOffsetInterpolated("std", v, "amd64", "net/http.Request.Method")).toEqual({ unknown: "version-not-built" });
    }
  });
});

describe("not Go, or corrupt", () => {
  test("a non-Go ELF file is a typed 'not a Go executable' error", () => {
    const e = (() => {
      try {
        readBuildInfo(load("/bin/true"));
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(BuildInfoError);
    expect((e as Error).message).toContain("not a Go executable (no Go build info)");
  });

  const bytes = new Uint8Array(readFileSync(buildGoFixture("gobin-sample", { goVersion: "1.27.4", stripped: true })));
  const clean = ElfFile.parse(bytes, "sample");
  const blobAt = clean.section(".go.buildinfo")!.offset;
  const old = new Uint8Array(readFileSync(buildWith(join(ROOT, "test/fixtures/go117-hello"), "go117-hello-1.17.13-amd64", "1.17.13")));
  const oldBlobAt = ElfFile.parse(old, "old").section(".go.buildinfo")!.offset;

  /** Only a BuildInfo or a GotelError, quickly. */
  function survives(b: Uint8Array): void {
    const t0 = performance.now();
    try {
      const info = readBuildInfo(ElfFile.parse(b, "corrupt"));
      expect(typeof info.goVersion).toBe("string");
    } catch (e) {
      if (!(e instanceof GotelError)) throw e;
    }
    expect(performance.now() - t0).toBeLessThan(2000);
  }

  test("every byte of the header and the first strings, flipped or maxed", () => {
    for (const [file, at] of [[bytes, blobAt], [old, oldBlobAt]] as const) {
      for (let i = 0; i < 64; i++) {
        for (const v of [0x00, 0xff, 0x80, file[at + i]! ^ 0x02]) {
          const b = file.slice();
          b[at + i] = v;
          survives(b);
        }
      }
    }
  });

  test("a huge varint length neither allocates nor throws anything untyped", () => {
    const b = bytes.slice();
    b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], blobAt + 32);
    expect(() => readBuildInfo(ElfFile.parse(b, "huge"))).toThrow(BuildInfoError);
  });

  test("mangled module lines are typed errors", () => {
    const b = bytes.slice();
    const text = new TextDecoder().decode(b.subarray(blobAt, blobAt + 2000));
    const dep = text.indexOf("\ndep\t");
    b[blobAt + dep + 4] = "=".charCodeAt(0); // "dep=" no longer a dep line: ignored, still parses
    survives(b);
    const at = text.indexOf("\n=>\t");
    b.fill(0x41, blobAt + at + 4, blobAt + at + 60); // a replacement line without its columns
    expect(() => readBuildInfo(ElfFile.parse(b, "mangled"))).toThrow(BuildInfoError);
  });

  test("truncated files", () => {
    for (const len of [0, 4, 64, 1000, blobAt, blobAt + 20, blobAt + 40, blobAt + 400, bytes.byteLength - 1]) survives(bytes.subarray(0, len));
  });
});
