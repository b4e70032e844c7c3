/**
 * The resource of one target process: who produced the spans. Same attributes as upstream (so dashboards keep
 * working when users switch) plus gotel's distro name; OTEL_RESOURCE_ATTRIBUTES adds to them and
 * OTEL_SERVICE_NAME wins over everything for service.name.
 */
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import sdkPackage from "@opentelemetry/sdk-trace-base/package.json" with { type: "json" };
import { basename } from "node:path";
import { GOTEL_VERSION } from "../version.ts";

export interface ProcessIdentity {
  pid: number;
  /** the executable's path as the process sees it */
  executablePath: string;
  /** the target's Go version from its build info, e.g. "go1.23.12" */
  goVersion: string;
}

export interface ResourceSettings {
  serviceName?: string;
  attributes?: Record<string, string>;
}

export function processResource(p: ProcessIdentity, s: ResourceSettings = {}): Resource {
  return resourceFromAttributes({
    "telemetry.sdk.language": "go",
    "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": sdkPackage.version,
    "telemetry.distro.name": "gotel",
    "telemetry.distro.version": GOTEL_VERSION,
    "process.pid": p.pid,
    "process.executable.path": p.executablePath,
    "process.runtime.name": "go",
    "process.runtime.version": p.goVersion,
    ...s.attributes,
    "service.name": s.serviceName ?? s.attributes?.["service.name"] ?? basename(p.executablePath),
  });
}
