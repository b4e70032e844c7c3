import { assetArch } from "../ebpf/assets.ts";
import { libbpf } from "../ebpf/libbpf.ts";
import { GOTEL_VERSION } from "../version.ts";

export function versionCommand(): number {
  console.log(`gotel ${GOTEL_VERSION} (libbpf ${libbpf().version}, linux/${assetArch}, bun ${Bun.version})`);
  return 0;
}
