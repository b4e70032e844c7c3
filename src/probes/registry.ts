/**
 * The instrumentations gotel has, and what each needs from a binary. The planner and `gotel inspect` ask
 * each one whether it would attach to a given executable and why not. Instrumentations register here as they
 * are written (net/http server first).
 */
import type { GoExecutable } from "../gobin/analyze.ts";
import type { FieldNeed } from "../offsets/resolver.ts";
import * as databaseSql from "./database-sql.ts";
import * as nethttpClient from "./nethttp-client.ts";
import * as nethttpServer from "./nethttp-server.ts";
import { librariesNotInstrumented, type NotInstrumented } from "./not-instrumented.ts";

export { moduleList, UNINSTRUMENTED_LIBRARIES, type NotInstrumented, type UninstrumentedLibrary } from "./not-instrumented.ts";

export type OffsetsSource = "dwarf" | "table" | "table-interpolated";

export interface Readiness {
  status: "ready" | "skipped";
  /** why it is skipped, or what it will probe */
  reason: string;
  offsetsSource?: OffsetsSource;
  /** table-interpolated: which built versions of the table stood in for the binary's */
  offsetsNote?: string;
}

export interface Instrumentation {
  /** e.g. "net/http server" */
  name: string;
  /** the module the instrumented package belongs to ("std" for the standard library) */
  module: string;
  /** whether it would attach to this executable, and why not */
  readiness(exe: GoExecutable): Readiness;
  /** the struct fields it reads, of the standard library and of other modules */
  needs: readonly FieldNeed[];
}

export const INSTRUMENTATIONS: readonly Instrumentation[] = [
  { name: "net/http server", module: "std", readiness: nethttpServer.readiness, needs: nethttpServer.NEEDS },
  { name: "net/http client", module: "std", readiness: nethttpClient.readiness, needs: nethttpClient.NEEDS },
  { name: "database/sql", module: "std", readiness: databaseSql.readiness, needs: databaseSql.NEEDS },
];

/** Every field of `module` ("std" or a module path) that some instrumentation reads: what the offsets table covers. */
export function fieldsOf(module: string): string[] {
  return [...new Set(INSTRUMENTATIONS.flatMap((i) => i.needs).filter((n) => n.module === module).map((n) => n.field))];
}

/**
 * The libraries of `exe` a user would expect traced that no registered instrumentation covers
 * (not-instrumented.ts), each with what that means. `ready` says whether an instrumentation would attach (the
 * agent knows from its probes); by default its readiness is asked, only when a framework on net/http is there.
 */
export function notInstrumented(
  exe: GoExecutable,
  instrumentations: readonly Instrumentation[] = INSTRUMENTATIONS,
  ready?: (instrumentation: string) => boolean,
): NotInstrumented[] {
  return librariesNotInstrumented(exe, {
    instrumented: new Set(instrumentations.map((i) => i.module)),
    ready: ready ?? ((name) => instrumentations.find((i) => i.name === name)?.readiness(exe).status === "ready"),
  });
}
