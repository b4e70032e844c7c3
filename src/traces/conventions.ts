/**
 * The version of the OpenTelemetry semantic conventions gotel's spans follow, and its schema URL, set on every
 * scope of gotel's own (spans the application makes through the OpenTelemetry API keep the schema URL their
 * tracer was given). test/unit/conventions.test.ts checks every attribute gotel writes against this version's
 * registry, as @opentelemetry/semantic-conventions of the same version publishes it.
 */
export const SEMCONV_VERSION = "1.45.0";
export const SCHEMA_URL = `https://opentelemetry.io/schemas/${SEMCONV_VERSION}`;
