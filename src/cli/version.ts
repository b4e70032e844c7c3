import { assetArch } from "../ebpf/assets.ts";
import { libbpf } from "../ebpf/libbpf.ts";
import { GOTEL_VERSION } from "../version.ts";
import { parseFlags } from "./usage.ts";

export function versionCommand(args: string[]): number {
  parseFlags(args, {});
  console.log(`gotel ${GOTEL_VERSION} (libbpf ${libbpf().version}, linux/${assetArch}, bun ${Bun.version})`);
  return 0;
}
