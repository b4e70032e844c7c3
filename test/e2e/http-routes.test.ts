/**
 * Routes end to end: one real service (test/fixtures/http-routers) with gin, chi, echo, gorilla/mux and httprouter each mounted
 * under a ServeMux prefix behind a middleware that copies the request, ServeMux patterns of its own and a router
 * gotel does not know; the oldest and newest release of each router gotel reads, stripped and not. Every
 * request's server span is checked exactly: its name and http.route (or their absence: a 404 of any router, a
 * prefix that only passed the request on).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { Collector, SPAN_KIND, useCollector, type ReceivedSpan } from "../support/collector.ts";
import { buildGoFixture, type GoBuild } from "../support/go.ts";
import { runGotel, startServer } from "../support/processes.ts";
import { GOTEL } from "../support/cli.ts";

const sharedCollector = useCollector();
let collector: Collector;
beforeAll(() => {
  collector = sharedCollector();
});

/** path -> the route its span must carry (undefined: none), and the status the service answers */
const REQUESTS: [path: string, route: string | undefined, status: number][] = [
  ["/plain/7", "/plain/{id}", 200],
  ["/static/", "/static/", 200],
  // a subtree pattern that matched a longer path by its prefix: not the route
  ["/static/app.css", undefined, 200],
  // the inner ServeMux set its pattern on the middleware's copy of the request
  ["/copied/7", "/copied/{id}", 200],
  ["/echo/users/7", "/echo/users/:id", 200],
  ["/echo/files/a/b", "/echo/files/*", 200],
  // echo's path on a 404 is the request's or a node's: not a route
  ["/echo/nope", undefined, 404],
  ["/gin/users/7", "/gin/users/:id", 200],
  ["/gin/files/a/b", "/gin/files/*path", 200],
  ["/gin/nope", undefined, 404],
  ["/chi/orders/7", "/chi/orders/{id}", 200],
  // a chi router mounted in another: chi joins their parts
  ["/chi/sub/items/3", "/chi/sub/items/{id}", 200],
  ["/chi/nope", undefined, 404],
  // a gorilla subrouter's route carries its prefix's template
  ["/gorilla/items/7", "/gorilla/items/{id}", 200],
  ["/gorilla/nope", undefined, 404],
  // httprouter's tree holds no template: gotel walks it again over the process's memory
  ["/hr/users/7", "/hr/users/:id", 200],
  ["/hr/users/7/books/9", "/hr/users/:id/books/:book", 200],
  ["/hr/src/a/b.go", "/hr/src/*filepath", 200],
  ["/hr/nope", undefined, 404],
  // a router gotel does not know, under a ServeMux prefix: no route rather than the prefix
  ["/unknown/x", undefined, 200],
  ["/nothing", undefined, 404],
];

const BUILDS: [string, GoBuild & { goVersion: string }][] = [
  ["newest releases (gin v1.12.0, chi v5.5.0, echo v4.16.6, gorilla/mux v1.8.1, httprouter v1.3.0), Go 1.27", { goVersion: "1.27.4" }],
  ["newest releases, Go 1.27, stripped", { goVersion: "1.27.4", stripped: true }],
  ["newest releases, Go 1.27, stripped PIE", { goVersion: "1.27.4", stripped: true, pie: true }],
  ["oldest releases (gin v1.5.0, chi v5.0.0, echo v4.1.16, gorilla/mux v1.7.0, httprouter v1.2.0), Go 1.22", { goVersion: "1.22.12", modfile: "go.oldest.mod" }],
  ["oldest releases, Go 1.22, stripped", { goVersion: "1.22.12", modfile: "go.oldest.mod", stripped: true }],
];

/** ServeMux's routes are read by the net/http server instrumentation itself */
const ROUTERS = ["gin routes", "chi routes", "echo routes", "httprouter routes", "gorilla/mux routes"];

describe("http.route of gin, chi, echo, gorilla/mux, httprouter and ServeMux, mounted and behind request-copying middleware", () => {
  test.each(BUILDS)("%s", async (_name, build) => {
    const exe = buildGoFixture("http-routers", build);
    const server = await startServer(exe);
    const pid = server.proc.pid;
    const gotel = await runGotel(["--pid", String(pid)], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint, OTEL_BSP_SCHEDULE_DELAY: "100" });
    try {
      await gotel.waitForLine(/gotel is running /);
      for (const router of ROUTERS) {
        const line = await gotel.waitForLine(new RegExp(`attached pid=${pid} .*instrumentation="${router.replace("/", "\\/")}"`), 1_000);
        expect(line).toContain(build.stripped ? "offsets=table" : "offsets=dwarf");
      }
      const ours = (spans: ReceivedSpan[]) => spans.filter((s) => s.resource["process.pid"] === BigInt(pid));
      for (const [path, , status] of REQUESTS) {
        const r = await fetch(server.base + path);
        await r.arrayBuffer();
        expect({ path, status: r.status }).toEqual({ path, status });
      }
      // 405s: no route either (httprouter looks the path up in the other methods' trees after its own)
      for (const path of ["/hr/users/7", "/chi/orders/7", "/gorilla/items/7"]) {
        const r = await fetch(server.base + path, { method: "POST" });
        await r.arrayBuffer();
        expect({ path, status: r.status }).toEqual({ path, status: 405 });
      }
      const expected = REQUESTS.length + 3;
      const spans = ours(await collector.waitFor((s) => ours(s).length >= expected, `${expected} spans of pid ${pid}`));
      await Bun.sleep(300);
      expect(ours(collector.spans()).length).toBe(expected);
      for (const path of ["/hr/users/7", "/chi/orders/7", "/gorilla/items/7"]) {
        const post = spans.filter((s) => s.attributes["url.path"] === path && s.attributes["http.request.method"] === "POST");
        expect(post.map((s) => ({ path, name: s.name, route: s.attributes["http.route"] }))).toEqual([{ path, name: "POST", route: undefined }]);
      }
      for (const [path, route, status] of REQUESTS) {
        const mine = spans.filter((s) => s.attributes["url.path"] === path && s.attributes["http.request.method"] === "GET");
        expect(mine.length).toBe(1);
        const s = mine[0]!;
        expect({ path, name: s.name, kind: s.kind, route: s.attributes["http.route"], status: s.attributes["http.response.status_code"] })
          .toEqual({ path, name: route ? `GET ${route}` : "GET", kind: SPAN_KIND.SERVER, route, status: BigInt(status) });
      }
    } finally {
      expect(await gotel.stop()).toBe(0);
      await server.proc.stop();
    }
  }, 300_000);
});

describe("inspect", () => {
  test("each router's routes are ready, and no longer listed as not instrumented", async () => {
    const exe = buildGoFixture("http-routers", { goVersion: "1.27.4", stripped: true });
    const p = Bun.spawnSync([GOTEL, "inspect", "--json", exe], { stdout: "pipe", stderr: "pipe" });
    expect(p.exitCode).toBe(0);
    const out = JSON.parse(p.stdout.toString()) as {
      instrumentations: { name: string; status: string; reason: string; offsetsSource?: string }[];
      notInstrumented: { module: string }[];
    };
    for (const router of ROUTERS) {
      const i = out.instrumentations.find((x) => x.name === router);
      expect({ router, status: i?.status }).toEqual({ router, status: "ready" });
      expect({ router, offsets: i?.offsetsSource }).toEqual({ router, offsets: "table" });
    }
    const listed = out.notInstrumented.map((n) => n.module);
    for (const m of ["github.com/gin-gonic/gin", "github.com/go-chi/chi/v5", "github.com/labstack/echo/v4", "github.com/gorilla/mux", "github.com/julienschmidt/httprouter"]) expect(listed).not.toContain(m);
  }, 120_000);
});
