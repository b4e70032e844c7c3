/** The eBPF objects embedded in this gotel (or, when run from source, the ones in build/). */
import { readFileSync } from "node:fs";
import { assetArch, bpfObjectPaths } from "gotel:assets";
import { GotelError } from "../errors.ts";

export { assetArch };

export function embeddedObjectNames(): string[] {
  return Object.keys(bpfObjectPaths).sort();
}

export function readEmbeddedObject(name: string): Uint8Array {
  const path = bpfObjectPaths[name];
  if (!path) throw new GotelError(`gotel has no embedded eBPF object '${name}'`, "rebuild gotel (npm run build)");
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new GotelError(`cannot read embedded eBPF object '${name}' (${path}): ${(e as Error).message}`, "rebuild gotel (npm run build)");
  }
}
