/**
 * Builds gotel: the eBPF objects for both architectures, the test-only eBPF objects, and the compiled
 * executables dist/gotel-linux-x64, dist/gotel-linux-arm64 and dist/gotel (the host's).
 * Needs the outputs of scripts/setup.sh (clang, node_modules, our libbpf). Steps whose inputs did not
 * change are skipped.
 *
 *   bun scripts/build.ts            everything
 *   bun scripts/build.ts bpf        only the eBPF objects
 */
import { copyFileSync, renameSync, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { assetFiles, assetsPlugin, ROOT, type Arch } from "./assets-plugin.ts";

const ARCHES: Record<Arch, { clangArch: string; bunTarget: "bun-linux-x64" | "bun-linux-arm64" }> = {
  x64: { clangArch: "x86", bunTarget: "bun-linux-x64" },
  arm64: { clangArch: "arm64", bunTarget: "bun-linux-arm64" },
};
const HOST = process.arch as Arch;

function run(cmd: string[], what: string): void {
  const r = Bun.spawnSync(cmd, { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) {
    console.error(`build: ${what} failed (exit ${r.exitCode}): ${cmd.join(" ")}`);
    process.exit(1);
  }
}

function newest(paths: string[]): number {
  return Math.max(0, ...paths.filter(existsSync).map((p) => statSync(p).mtimeMs));
}

function filesIn(dir: string, suffix: string, recursive = false): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive, encoding: "utf8" }).filter((f) => f.endsWith(suffix)).sort().map((f) => join(dir, f));
}

/** gotel's own eBPF programs: the core and doctor's self-test in bpf/, each instrumentation's in its folder, propagation's */
const PRODUCT_BPF = [...filesIn(join(ROOT, "bpf"), ".bpf.c"), ...filesIn(join(ROOT, "src/instrumentations"), ".bpf.c", true), ...filesIn(join(ROOT, "src/propagation"), ".bpf.c", true)];

/** The host's multiarch include dir holds asm/types.h, which linux/bpf.h needs; it is the same for both targets. */
function multiarchInclude(): string {
  const r = Bun.spawnSync(["gcc", "-print-multiarch"]);
  return `/usr/include/${r.stdout.toString().trim() || "x86_64-linux-gnu"}`;
}

function buildBpf(sources: string[], outDir: string, arch: Arch): void {
  mkdirSync(outDir, { recursive: true });
  // test objects may #include a product program to build a variant of it
  const headers = [...filesIn(join(ROOT, "bpf/include"), ".h"), ...filesIn(join(ROOT, "src/instrumentations"), ".h", true), ...PRODUCT_BPF, join(ROOT, "build/libbpf/include/bpf/libbpf_version.h")];
  for (const src of sources) {
    const out = join(outDir, src.split("/").pop()!.replace(/\.c$/, ".o"));
    if (existsSync(out) && statSync(out).mtimeMs >= newest([src, ...headers, import.meta.path])) continue;
    run([
      "clang", "-O2", "-g", "-target", "bpf", `-D__TARGET_ARCH_${ARCHES[arch].clangArch}`, "-Wall", "-Werror",
      "-I", join(ROOT, "bpf/include"), "-I", join(ROOT, "build/libbpf/include"), "-idirafter", multiarchInclude(),
      "-c", src, "-o", out,
    ], `clang ${src} (${arch})`);
    // DWARF is only for humans; BTF (.BTF, .BTF.ext) stays, libbpf and gotel read layouts from it
    run(["llvm-strip", "-g", out], `llvm-strip ${out}`);
    console.log(`build: ${out.slice(ROOT.length + 1)}`);
  }
}

async function compile(arch: Arch): Promise<string> {
  const out = join(ROOT, "dist", `gotel-linux-${arch}`);
  const a = assetFiles(arch);
  if (!existsSync(a.libbpf)) throw new Error(`${a.libbpf} is missing: run vendor/libbpf/build.sh ${arch}`);
  const inputs = [a.libbpf, ...Object.values(a.objects), ...sourceFiles(join(ROOT, "src")), join(ROOT, "package.json"), import.meta.path];
  if (existsSync(out) && statSync(out).mtimeMs >= newest(inputs)) return out;
  const result = await Bun.build({
    entrypoints: [join(ROOT, "src/cli/main.ts")],
    // an agent reads no bunfig.toml or .env from whatever directory it is started in: a bunfig's preload would run
    // inside it (this repo's own did, ~20 ms of every start from the checkout), a .env would set its OTEL_* settings
    compile: { target: ARCHES[arch].bunTarget, outfile: out, autoloadBunfig: false, autoloadDotenv: false },
    plugins: [assetsPlugin(arch, true)],
    minify: true,
    sourcemap: "none",
    // compiled to JavaScriptCore bytecode at build time: `gotel version` went from ~90 to ~20 ms (parsing the bundle)
    bytecode: true,
    format: "esm",
  });
  if (!result.success) {
    for (const l of result.logs) console.error(l);
    throw new Error(`compiling ${out} failed`);
  }
  console.log(`build: dist/gotel-linux-${arch} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
  return out;
}

/** what the compiled binary is made of: code, and data it imports (the offsets table) */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts") || f.endsWith(".json")).map((f) => join(dir, f));
}

const only = process.argv[2];
for (const arch of Object.keys(ARCHES) as Arch[]) {
  buildBpf(PRODUCT_BPF, join(ROOT, "build/bpf", arch), arch);
}
buildBpf(filesIn(join(ROOT, "test/fixtures/bpf"), ".bpf.c"), join(ROOT, "build/test-bpf", HOST), HOST);
if (only !== "bpf") {
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  for (const arch of Object.keys(ARCHES) as Arch[]) {
    const out = await compile(arch);
    if (arch === HOST) {
      // copy, then rename over dist/gotel: a running gotel keeps its old file (copying onto it fails with ETXTBSY)
      copyFileSync(out, join(ROOT, "dist", ".gotel.tmp"));
      renameSync(join(ROOT, "dist", ".gotel.tmp"), join(ROOT, "dist", "gotel"));
    }
  }
}
