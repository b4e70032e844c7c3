/** The running kernel's version, from its release string ("6.18.44-fc-v657" -> [6, 18, 44]). */
import { release } from "node:os";

export function kernelVersion(rel = release()): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(rel);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** The running kernel is `major.minor` or newer (false when its release cannot be read). */
export function kernelAtLeast(major: number, minor: number, rel = release()): boolean {
  const v = kernelVersion(rel);
  return v !== undefined && (v[0] > major || (v[0] === major && v[1] >= minor));
}
