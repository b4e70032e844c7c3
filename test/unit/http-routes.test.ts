import { describe, expect, test } from "bun:test";
import { GoExecutable } from "../../src/gobin/analyze.ts";
import { walk } from "../../src/instrumentations/http-routes/httprouter-trees.ts";
import { planRouter, ROUTERS } from "../../src/instrumentations/http-routes/routers.ts";
import { buildGoFixture } from "../support/go.ts";
import { routeOf, routeOfPattern } from "../../src/instrumentations/http-routes/route.ts";

describe("http.route from a ServeMux pattern", () => {
  test.each([
    ["GET /users/{id}", "/users/{id}"],
    ["/users/{id}", "/users/{id}"],
    ["example.com/users/", "/users/"],
    ["POST example.com/a/{rest...}", "/a/{rest...}"],
    ["/{$}", "/{$}"],
    ["", undefined],
    ["GET example.com", undefined],
  ])("%p -> %p", (pattern, route) => {
    expect(routeOfPattern(pattern)).toBe(route);
  });

  test("a subtree pattern is the route of its own path, not of the paths below it it passed on", () => {
    expect(routeOf({ kind: "servemux", text: "/static/", pathLength: "/static/".length })).toBe("/static/");
    expect(routeOf({ kind: "servemux", text: "/static/", pathLength: "/static/app.css".length })).toBeUndefined();
    expect(routeOf({ kind: "servemux", text: "GET /", pathLength: 1 })).toBe("/");
    expect(routeOf({ kind: "servemux", text: "GET /", pathLength: 6 })).toBeUndefined();
    // wildcards are templates, whatever they matched
    expect(routeOf({ kind: "servemux", text: "/files/{path...}", pathLength: 40 })).toBe("/files/{path...}");
    expect(routeOf({ kind: "servemux", text: "", pathLength: 4 })).toBeUndefined();
  });
});

describe("http.route from a router's note", () => {
  test("gin's and gorilla's route as read; an empty one, or a router that matched nothing, is none", () => {
    expect(routeOf({ kind: "field", text: "/users/:id", pathLength: 0 })).toBe("/users/:id");
    expect(routeOf({ kind: "string", text: "/items/{id:[0-9]+}", pathLength: 0 })).toBe("/items/{id:[0-9]+}");
    expect(routeOf({ kind: "field", text: "", pathLength: 0 })).toBeUndefined();
    expect(routeOf({ kind: "none", text: "", pathLength: 0 })).toBeUndefined();
  });

  test("chi: its routers' parts joined without the mount points' wildcards, as chi's RoutePattern", () => {
    expect(routeOf({ kind: "chi", text: "/chi/*/orders/*/{id}", pathLength: 0 })).toBe("/chi/orders/{id}");
    expect(routeOf({ kind: "chi", text: "/api/*/*/users/", pathLength: 0 })).toBe("/api/users");
    expect(routeOf({ kind: "chi", text: "/", pathLength: 0 })).toBe("/");
    expect(routeOf({ kind: "chi", text: "/items/{id}", pathLength: 0 })).toBe("/items/{id}");
    expect(routeOf({ kind: "chi", text: "", pathLength: 0 })).toBeUndefined();
  });
});

describe("httprouter: the route rebuilt by walking its tree as its getValue does", () => {
  // the tree httprouter builds for GET /users/:id, /users/:id/books/:book, /src/*filepath, /about
  type Node = { path: string; wildChild: boolean; type: number; indices: string; children: number[]; hasHandle: boolean };
  const [STATIC, PARAM, CATCH_ALL] = [0, 2, 3];
  const nodes = new Map<number, Node>([
    [1, { path: "/", wildChild: false, type: 1, indices: "usa", children: [2, 6, 9], hasHandle: false }],
    [2, { path: "users/", wildChild: true, type: STATIC, indices: "", children: [3], hasHandle: false }],
    [3, { path: ":id", wildChild: false, type: PARAM, indices: "", children: [4], hasHandle: true }],
    [4, { path: "/books/", wildChild: true, type: STATIC, indices: "", children: [5], hasHandle: false }],
    [5, { path: ":book", wildChild: false, type: PARAM, indices: "", children: [], hasHandle: true }],
    [6, { path: "src", wildChild: false, type: STATIC, indices: "/", children: [7], hasHandle: false }],
    [7, { path: "", wildChild: true, type: CATCH_ALL, indices: "", children: [8], hasHandle: false }],
    [8, { path: "/*filepath", wildChild: false, type: CATCH_ALL, indices: "", children: [], hasHandle: true }],
    [9, { path: "about", wildChild: false, type: STATIC, indices: "", children: [], hasHandle: true }],
  ]);
  const route = (path: string) => walk(1, path, (a) => nodes.get(a));

  test.each([
    ["/users/7", "/users/:id"],
    ["/users/7/books/9", "/users/:id/books/:book"],
    ["/src/a/b.go", "/src/*filepath"],
    ["/about", "/about"],
    // no handle there, or no node: getValue finds none
    ["/users/", undefined],
    ["/users/7/books", undefined],
    ["/users/7/books/9/x", undefined],
    ["/nope", undefined],
    ["/", undefined],
    ["/aboutx", undefined],
  ])("%p -> %p", (path, want) => {
    expect(route(path)).toBe(want);
  });

  test("an unreadable node ends the walk with no route", () => {
    expect(walk(1, "/users/7", (a) => (a === 3 ? undefined : nodes.get(a)))).toBeUndefined();
  });
});

describe("which routers' routes a binary gets (test/fixtures/http-routers)", () => {
  const byName = (name: string) => ROUTERS.find((r) => r.name === name)!;

  test.each([false, true])("stripped: %p — every router ready, the kernel's offsets and user space's apart", (stripped) => {
    const exe = GoExecutable.open(buildGoFixture("http-routers", { goVersion: "1.27.4", stripped }));
    for (const router of ROUTERS) {
      const p = planRouter(exe, router);
      if ("skipped" in p) throw new Error(`${router.name}: ${p.skipped}`);
      expect({ router: router.name, source: p.offsetsSource }).toEqual({ router: router.name, source: stripped ? "table" : "dwarf" });
      expect(Object.keys(p.offsets).sort()).toEqual(Object.keys(router.fields).sort());
      expect(Object.keys(p.userOffsets).sort()).toEqual(Object.keys(router.userFields ?? {}).sort());
      expect(Object.keys(p.programs).sort()).toEqual(Object.keys(router.programs).sort());
    }
  }, 300_000);

  test("a release older than a router's oldest is skipped, saying so; a binary without the router is absent", () => {
    const exe = GoExecutable.open(buildGoFixture("http-routers", { goVersion: "1.27.4" }));
    const older = Object.create(exe, { moduleVersion: { value: (m: string) => (m === "github.com/gorilla/mux" ? "v1.6.2" : exe.moduleVersion(m)) } }) as GoExecutable;
    expect(planRouter(older, byName("gorilla/mux routes"))).toEqual({
      skipped: "github.com/gorilla/mux v1.6.2 is older than v1.7.0, the oldest release whose routes gotel reads",
    });
    const plain = GoExecutable.open(buildGoFixture("http-server", { goVersion: "1.27.4" }));
    expect(planRouter(plain, byName("gin routes"))).toEqual({ skipped: "the binary does not contain github.com/gin-gonic/gin", absent: true });
  }, 300_000);
});
