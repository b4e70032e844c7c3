/**
 * http.route from what the server span read where a router noted its match (bpf/include/http_route.h): the
 * matched route template in the router's own syntax (semantic conventions: "the matched route, that is, the
 * path template"), or none — never a prefix that only passed the request on to another handler.
 */

/** How the route was read: enum gotel_http_route_kind's names, without the prefix */
export type RouteKind = "servemux" | "none" | "string" | "field" | "chi" | "echo" | "httprouter";

/** What the server span carries about its route. */
export interface RouteNote {
  kind: RouteKind;
  /** the bytes read: a ServeMux pattern, a route, or chi's parts joined */
  text: string;
  /** servemux: the length of the path the innermost ServeMux matched */
  pathLength: number;
  /** httprouter: the root of the tree its path was looked up in (text: that path, until user space walks it) */
  node?: number;
}

export function routeOf(note: RouteNote): string | undefined {
  switch (note.kind) {
    case "servemux":
      return serveMuxRoute(note.text, note.pathLength);
    case "chi":
      return chiRoute(note.text);
    case "string":
    case "field":
    case "echo":
    case "httprouter":
      return note.text || undefined;
    case "none":
      return undefined;
  }
}

/** A ServeMux pattern is "[METHOD ][HOST]/PATH"; http.route is its path. */
export function routeOfPattern(pattern: string): string | undefined {
  const p = pattern.trim();
  if (p === "") return undefined;
  const afterMethod = p.includes(" ") ? p.slice(p.indexOf(" ") + 1).trim() : p;
  const slash = afterMethod.indexOf("/");
  return slash >= 0 ? afterMethod.slice(slash) : undefined;
}

/**
 * A pattern ending in "/" matches every path below it: a request it matched by that prefix (a longer path) was
 * passed on to whatever handles the subtree — a router gotel may not know, a file server — and the prefix is not
 * its route. Patterns with wildcards ({id}, {rest...}) are templates, and routes.
 */
function serveMuxRoute(pattern: string, pathLength: number): string | undefined {
  const route = routeOfPattern(pattern);
  if (route === undefined) return undefined;
  return route.endsWith("/") && pathLength > route.length ? undefined : route;
}

/** chi joins its routers' parts and drops the mount points' wildcards, as its Context.RoutePattern does. */
function chiRoute(joined: string): string | undefined {
  let p = joined;
  while (p.includes("/*/")) p = p.replaceAll("/*/", "/");
  if (p !== "/") {
    if (p.endsWith("//")) p = p.slice(0, -2);
    if (p.endsWith("/")) p = p.slice(0, -1);
  }
  return p || undefined;
}
