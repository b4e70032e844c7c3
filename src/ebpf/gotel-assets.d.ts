/** Provided at build time by scripts/assets-plugin.ts: the files embedded for one architecture. */
declare module "gotel:assets" {
  /** `x64` or `arm64`: the architecture these assets were built for. */
  export const assetArch: string;
  /** Path of our libbpf shared object (a /$bunfs path inside the compiled binary). */
  export const libbpfPath: string;
  /** eBPF object paths by name (`selftest` for bpf/selftest.bpf.c). */
  export const bpfObjectPaths: Readonly<Record<string, string>>;
}
