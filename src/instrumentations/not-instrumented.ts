/**
 * Libraries a user would expect traced that gotel does not instrument yet, and what that means for their spans.
 * `gotel inspect` and the attach log name the ones a binary's build info lists, so that nothing is left unseen
 * in silence. The list shrinks by itself: an instrumentation registered for a module (index.ts) takes that
 * module off it.
 */
import type { GoExecutable } from "../gobin/analyze.ts";

/** The instrumentation that traces the requests of routers and frameworks built on net/http's server. */
export const NETHTTP_SERVER = "net/http server";

export interface UninstrumentedLibrary {
  /** a module path, as the build info lists it */
  module: string;
  /** what gotel misses there */
  note: string;
  /** a router or framework on net/http's server: its requests are spans when that instrumentation applies */
  onNetHttpServer?: true;
}

const COMMANDS = "not instrumented yet (its commands make no spans)";
const MESSAGES = "not instrumented yet (producing and consuming messages make no spans)";
const OPERATIONS = "not instrumented yet (its operations make no spans)";
const FASTHTTP = "not instrumented yet (it serves HTTP through fasthttp, not net/http: its requests make no spans)";
const ROUTES_READY = "its routes are not read (its requests are traced by the net/http server instrumentation, without its route: no http.route)";
const ROUTES_SKIPPED = "not instrumented; its requests go through net/http, whose server instrumentation does not apply to this binary (see its skip reason)";

export const UNINSTRUMENTED_LIBRARIES: readonly UninstrumentedLibrary[] = [
  { module: "github.com/redis/go-redis/v9", note: COMMANDS },
  { module: "github.com/go-redis/redis/v9", note: COMMANDS },
  { module: "github.com/go-redis/redis/v8", note: COMMANDS },
  { module: "github.com/go-redis/redis/v7", note: COMMANDS },
  { module: "github.com/go-redis/redis", note: COMMANDS },
  { module: "github.com/gomodule/redigo", note: COMMANDS },
  { module: "github.com/twmb/franz-go", note: MESSAGES },
  { module: "github.com/confluentinc/confluent-kafka-go/v2", note: MESSAGES },
  { module: "github.com/confluentinc/confluent-kafka-go", note: MESSAGES },
  { module: "go.mongodb.org/mongo-driver/v2", note: OPERATIONS },
  { module: "go.mongodb.org/mongo-driver", note: OPERATIONS },
  { module: "github.com/gocql/gocql", note: "not instrumented yet (its queries make no spans)" },
  { module: "github.com/gin-gonic/gin", note: ROUTES_READY, onNetHttpServer: true },
  { module: "github.com/labstack/echo/v5", note: ROUTES_READY, onNetHttpServer: true },
  { module: "github.com/labstack/echo/v4", note: ROUTES_READY, onNetHttpServer: true },
  { module: "github.com/go-chi/chi/v5", note: ROUTES_READY, onNetHttpServer: true },
  { module: "github.com/go-chi/chi", note: ROUTES_READY, onNetHttpServer: true },
  { module: "github.com/gorilla/mux", note: ROUTES_READY, onNetHttpServer: true },
  { module: "github.com/gofiber/fiber/v3", note: FASTHTTP },
  { module: "github.com/gofiber/fiber/v2", note: FASTHTTP },
  { module: "github.com/valyala/fasthttp", note: "not instrumented yet (it does not use net/http: the requests it serves and sends make no spans)" },
  { module: "github.com/nats-io/nats.go", note: "not instrumented yet (publishing and receiving messages make no spans)" },
  { module: "github.com/rabbitmq/amqp091-go", note: MESSAGES },
  { module: "github.com/streadway/amqp", note: MESSAGES },
];

/** One library of the binary that gotel does not instrument: what `inspect --json` lists as notInstrumented. */
export interface NotInstrumented {
  module: string;
  /** the version that was built (a replacement's, when replaced) */
  version: string;
  note: string;
}

export interface NotInstrumentedOptions {
  /** the modules that instrumentations are registered for: these are never listed */
  instrumented: ReadonlySet<string>;
  /** whether the named instrumentation would attach to this binary; asked only for frameworks on net/http */
  ready: (instrumentation: string) => boolean;
  libraries?: readonly UninstrumentedLibrary[];
}

/** The libraries of `exe` that a user would expect traced and gotel does not instrument, in the list's order. */
export function librariesNotInstrumented(exe: GoExecutable, opts: NotInstrumentedOptions): NotInstrumented[] {
  const out: NotInstrumented[] = [];
  let serverReady: boolean | undefined;
  for (const lib of opts.libraries ?? UNINSTRUMENTED_LIBRARIES) {
    if (opts.instrumented.has(lib.module)) continue;
    const version = exe.moduleVersion(lib.module);
    if (version === undefined) continue;
    let note = lib.note;
    if (lib.onNetHttpServer) {
      serverReady ??= opts.ready(NETHTTP_SERVER);
      if (!serverReady) note = ROUTES_SKIPPED;
    }
    out.push({ module: lib.module, version, note });
  }
  return out;
}

/** "google.golang.org/grpc v1.77.0, github.com/redis/go-redis/v9 v9.7.0", for one log field. */
export function moduleList(libs: readonly NotInstrumented[]): string {
  return libs.map((l) => `${l.module} ${l.version}`).join(", ");
}
