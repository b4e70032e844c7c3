import { describe, expect, test } from "bun:test";
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
