/**
 * Every attribute gotel writes is in the registry of the semantic conventions version its spans' schema URL
 * names (src/traces/conventions.ts), as @opentelemetry/semantic-conventions of that version publishes it, and
 * is not deprecated there — but for the older ones kept on purpose for dashboards built on the system gotel
 * replaces, each named here with why. The attribute names are read from the sources that shape spans and
 * resources; bumping the conventions package without rechecking fails here.
 */
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SCHEMA_URL, SEMCONV_VERSION } from "../../src/traces/conventions.ts";
import { ROOT } from "../support/go.ts";

const PACKAGE = join(ROOT, "node_modules/@opentelemetry/semantic-conventions");

/** deprecated in SEMCONV_VERSION, written anyway */
const KEPT_DEPRECATED: Record<string, string> = {
  "rpc.system": "upstream's gRPC spans carry it (rpc.system.name is written too)",
  "rpc.service": "upstream's gRPC spans carry it (rpc.method holds pkg.Service/Method)",
  "rpc.grpc.status_code": "upstream's gRPC spans carry it (rpc.status_code is written too)",
  "messaging.system": "upstream's Kafka spans carry it (messaging.system.name is written too)",
  "messaging.kafka.message.key": "upstream's Kafka spans carry it (kafka.message.key is written too)",
};

/** name -> deprecated, from the package's declarations: each ATTR_ constant and the doc comment before it */
function registry(): Map<string, boolean> {
  const names = new Map<string, boolean>();
  for (const file of ["stable_attributes.d.mts", "experimental_attributes.d.mts"]) {
    const text = readFileSync(join(PACKAGE, "dist", file), "utf8");
    for (const m of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*declare const ATTR_\w+: "([^"]+)";/g)) {
      names.set(m[2]!, /@deprecated/.test(m[1]!));
    }
  }
  return names;
}

/** The well-known values of db.system.name. */
function dbSystems(): Set<string> {
  const values = new Set<string>();
  for (const file of ["stable_attributes.d.mts", "experimental_attributes.d.mts"]) {
    for (const m of readFileSync(join(PACKAGE, "dist", file), "utf8").matchAll(/declare const DB_SYSTEM_NAME_VALUE_\w+: "([^"]+)";/g)) values.add(m[1]!);
  }
  return values;
}

/** Quoted dotted names used as keys (`"url.full":`, `["url.full"]`) in the sources that shape spans. */
function writtenAttributes(namespaces: Set<string>, values: Set<string>): string[] {
  const files = [
    ...readdirSync(join(ROOT, "src/instrumentations"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => join("src/instrumentations", f)),
    "src/traces/resource.ts", "src/probes/span-event.ts",
  ];
  const found = new Set<string>();
  for (const f of files) {
    for (const m of readFileSync(join(ROOT, f), "utf8").matchAll(/["']([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)["']\s*[\]:]/g)) {
      // struct-field keys of a config ("map.hmap_b") are not in an attribute namespace; db.system.name values
      // ("oracle.db") key a table of default ports
      if (namespaces.has(m[1]!.split(".")[0]!) && !values.has(m[1]!)) found.add(m[1]!);
    }
  }
  return [...found].sort();
}

test(`the schema URL names the version of the conventions package (${SEMCONV_VERSION})`, () => {
  expect(JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8")).version).toBe(SEMCONV_VERSION);
  expect(SCHEMA_URL).toBe(`https://opentelemetry.io/schemas/${SEMCONV_VERSION}`);
});

test("every attribute gotel writes is in that version's registry, and not deprecated unless kept on purpose", () => {
  const reg = registry();
  expect(reg.size).toBeGreaterThan(900);
  const namespaces = new Set([...reg.keys()].map((n) => n.split(".")[0]!));
  const written = writtenAttributes(namespaces, dbSystems());
  // the scrape sees the attributes of every instrumentation
  for (const a of ["http.request.method", "url.full", "db.system.name", "rpc.method", "error.type", "service.name", "exception.type"]) expect(written).toContain(a);
  const unknown = written.filter((a) => !reg.has(a));
  const deprecated = written.filter((a) => reg.get(a) === true && !(a in KEPT_DEPRECATED));
  expect({ unknown, deprecated }).toEqual({ unknown: [], deprecated: [] });
  // what is kept on purpose is deprecated indeed (else it needs no reason)
  for (const a of Object.keys(KEPT_DEPRECATED)) expect([a, reg.get(a)]).toEqual([a, true]);
});

test("every db.system.name gotel writes is one of that version's values", () => {
  const source = readFileSync(join(ROOT, "src/instrumentations/database-sql/source.ts"), "utf8");
  const systems = [...new Set([...source.matchAll(/system: "([^"]+)"/g)].map((m) => m[1]!))];
  expect(systems.length).toBeGreaterThan(4);
  const known = dbSystems();
  expect(systems.filter((s) => !known.has(s))).toEqual([]);
});
