/**
 * Resolves `import … from "gotel:assets"` to the files of one architecture: our libbpf .so and the eBPF
 * objects. For `bun build --compile` the files are imported `with { type: "file" }` so they are embedded;
 * when gotel runs from source (tests, `bun src/cli/main.ts`) the module just points into build/.
 */
import type { BunPlugin } from "bun";
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";

export type Arch = "x64" | "arm64";
export const ROOT = resolve(import.meta.dir, "..");

export function assetFiles(arch: Arch): { libbpf: string; objects: Record<string, string> } {
  const bpfDir = join(ROOT, "build", "bpf", arch);
  const objects: Record<string, string> = {};
  if (existsSync(bpfDir)) {
    for (const f of readdirSync(bpfDir).sort()) {
      if (f.endsWith(".bpf.o")) objects[f.slice(0, -".bpf.o".length)] = join(bpfDir, f);
    }
  }
  return { libbpf: join(ROOT, "build", "libbpf", arch, "libbpf.so"), objects };
}

function moduleSource(arch: Arch, embed: boolean): string {
  const files = assetFiles(arch);
  if (!embed) {
    return [
      `export const assetArch = ${JSON.stringify(arch)};`,
      `export const libbpfPath = ${JSON.stringify(files.libbpf)};`,
      `export const bpfObjectPaths = ${JSON.stringify(files.objects)};`,
    ].join("\n");
  }
  const names = Object.keys(files.objects);
  return [
    `import libbpfPath from ${JSON.stringify(files.libbpf)} with { type: "file" };`,
    ...names.map((n, i) => `import obj${i} from ${JSON.stringify(files.objects[n])} with { type: "file" };`),
    `export const assetArch = ${JSON.stringify(arch)};`,
    `export { libbpfPath };`,
    `export const bpfObjectPaths = { ${names.map((n, i) => `${JSON.stringify(n)}: obj${i}`).join(", ")} };`,
  ].join("\n");
}

export function assetsPlugin(arch: Arch, embed: boolean): BunPlugin {
  return {
    name: "gotel-assets",
    setup(build) {
      // Bun's runtime plugins (bun test, bun run) resolve virtual modules only through build.module()
      if (!embed) {
        build.module("gotel:assets", () => ({ contents: moduleSource(arch, false), loader: "ts" }));
        return;
      }
      build.onResolve({ filter: /^gotel:assets$/ }, () => ({ path: `assets-${arch}`, namespace: "gotel-assets" }));
      build.onLoad({ filter: /.*/, namespace: "gotel-assets" }, () => ({ contents: moduleSource(arch, embed), loader: "ts" }));
    },
  };
}
