/**
 * The routers whose routes gotel reads (http_routes.bpf.c says where and why there): each one an
 * instrumentation of its own in index.ts, sharing that object; ServeMux's routes are the net/http server's own.
 * A router's requests are spans of the net/http server instrumentation either way; this adds their http.route
 * and the span name `METHOD route`.
 *
 * Not here yet: echo v5 (another API), chi before v5.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import { bundledTable } from "../../offsets/bundled.ts";
import type { FieldsProgram } from "../../offsets/fields-program.ts";
import { resolveOffsets, type FieldNeed, type OffsetsSource, type TableLookup } from "../../offsets/resolver.ts";
import { compareVersions } from "../../offsets/table.ts";
import { MIN_GO, goAtLeast } from "../../probes/plan.ts";
import type { Readiness } from "../../probes/instrumentation.ts";
import type { MemoryReader } from "../../gobin/runtime-types.ts";
import { httpRouterTrees, type NodeOffsets } from "./httprouter-trees.ts";

export interface Router {
  /** the instrumentation's name, e.g. "gin routes" */
  name: string;
  /** the router's module path */
  module: string;
  /** program (http_routes.bpf.c) -> the function it probes at its entry; all of them are needed */
  programs: Record<string, string>;
  /** config member (struct http_routes_config) -> "import/path.Type.field"; all of them are needed */
  fields: Record<string, string>;
  /** fields read in user space, not by the kernel (name -> "import/path.Type.field"); all of them are needed */
  userFields?: Record<string, string>;
  /** when its probes attach to a process: what user space needs of it (the fields above, its memory) */
  attached?: (tgid: number, userOffsets: Record<string, number>, memory: () => MemoryReader | undefined) => void;
  forgotten?: (tgid: number) => void;
  /** the oldest release whose functions and fields are the ones above (older ones are skipped, said so) */
  since?: string;
  /** how the offsets generator sees its fields (imports and body of src/offsets/fields-program.ts) */
  fieldsProgram: Omit<FieldsProgram, "module">;
}

const GIN = "github.com/gin-gonic/gin";
const CHI = "github.com/go-chi/chi/v5";
const ECHO = "github.com/labstack/echo/v4";
const GORILLA = "github.com/gorilla/mux";
const HTTPROUTER = "github.com/julienschmidt/httprouter";

export const ROUTERS: readonly Router[] = [
  {
    name: "gin routes", module: GIN, since: "v1.5.0",
    programs: { http_route_gin: `${GIN}.(*Engine).handleHTTPRequest` },
    fields: { gin_context_full_path: `${GIN}.Context.fullPath` },
    fieldsProgram: { since: "v1.5.0", imports: [`"${GIN}"`], body: "\t\tsink = append(sink, gin.New(), &gin.Context{})" },
  },
  {
    name: "chi routes", module: CHI,
    programs: { http_route_chi: `${CHI}.(*node).FindRoute` },
    fields: { chi_context_route_pattern: `${CHI}.Context.routePattern`, chi_context_route_patterns: `${CHI}.Context.RoutePatterns` },
    fieldsProgram: { since: "v5.0.0", imports: [`"${CHI}"`], body: "\t\tsink = append(sink, chi.NewRouter(), chi.NewRouteContext())" },
  },
  {
    name: "echo routes", module: ECHO,
    programs: { http_route_echo: `${ECHO}.(*Router).Find` },
    fields: { echo_context_path: `${ECHO}.context.path`, echo_context_handler: `${ECHO}.context.handler` },
    fieldsProgram: {
      since: "v4.0.0", imports: ['"net/http"', `"${ECHO}"`], body: "\t\te := echo.New()\n\t\tsink = append(sink, e, e.NewContext(&http.Request{}, nil))",
    },
  },
  {
    // its tree is walked in user space (httprouter-trees.ts): the kernel notes which tree and path
    name: "httprouter routes", module: HTTPROUTER,
    programs: { http_route_httprouter_router: `${HTTPROUTER}.(*Router).ServeHTTP`, http_route_httprouter_lookup: `${HTTPROUTER}.(*node).getValue` },
    fields: {},
    userFields: {
      path: `${HTTPROUTER}.node.path`, wildChild: `${HTTPROUTER}.node.wildChild`, nType: `${HTTPROUTER}.node.nType`,
      indices: `${HTTPROUTER}.node.indices`, children: `${HTTPROUTER}.node.children`, handle: `${HTTPROUTER}.node.handle`,
    },
    attached: (tgid, offsets, memory) => httpRouterTrees.register(tgid, memory, nodeOffsets(offsets)),
    forgotten: (tgid) => httpRouterTrees.forget(tgid),
    fieldsProgram: {
      since: "v1.2.0", imports: [`"${HTTPROUTER}"`],
      body: "\t\tr := httprouter.New()\n\t\th, _, _ := r.Lookup(os.Args[1], os.Args[2])\n\t\tsink = append(sink, r, h)",
    },
  },
  {
    // from v1.7.0 routeRegexpGroup is passed by value (setMatch's m is its 7th argument word)
    name: "gorilla/mux routes", module: GORILLA, since: "v1.7.0",
    programs: { http_route_gorilla_router: `${GORILLA}.(*Router).ServeHTTP`, http_route_gorilla_match: `${GORILLA}.routeRegexpGroup.setMatch` },
    fields: {
      gorilla_match_route: `${GORILLA}.RouteMatch.Route`,
      gorilla_route_conf: `${GORILLA}.Route.routeConf`,
      gorilla_conf_regexp: `${GORILLA}.routeConf.regexp`,
      gorilla_group_path: `${GORILLA}.routeRegexpGroup.path`,
      gorilla_regexp_template: `${GORILLA}.routeRegexp.template`,
    },
    fieldsProgram: {
      since: "v1.7.0", imports: ['"net/http"', `"${GORILLA}"`],
      body: "\t\tr := mux.NewRouter()\n\t\tr.HandleFunc(os.Args[1], nil)\n\t\tvar m mux.RouteMatch\n\t\tsink = append(sink, r.Match(&http.Request{}, &m), &m)",
    },
  },
];

/** The program that shows a router's fields to the offsets generator. */
export function routerFieldsProgram(router: Router): FieldsProgram {
  return { module: router.module, ...router.fieldsProgram };
}

/** What a router's probes read, for the offsets resolver and the table's generator. */
export function routerNeeds(router: Router): FieldNeed[] {
  return Object.entries({ ...router.fields, ...router.userFields }).map(([key, field]) => ({ key, field, module: router.module, optional: false }));
}

export interface RouterPlan {
  /** program -> its entry site */
  programs: Record<string, number[]>;
  /** the kernel's (http_routes_config) */
  offsets: Record<string, number | undefined>;
  /** user space's (Router.userFields) */
  userOffsets: Record<string, number>;
  offsetsSource?: OffsetsSource;
  offsetsNote?: string;
  /** how the probes run, for inspect */
  how: string;
}

export const routerPresent = (router: Router) => (exe: GoExecutable): boolean =>
  Object.values(router.programs).some((f) => exe.functions().get(f) !== undefined);

export function planRouter(exe: GoExecutable, router: Router, table: TableLookup = bundledTable): RouterPlan | { skipped: string; absent?: true } {
  if (!goAtLeast(exe.goVersion, MIN_GO)) return { skipped: `Go ${exe.goVersion} is older than ${MIN_GO.join(".")}` };
  const version = exe.moduleVersion(router.module);
  if (version === undefined) return { skipped: `the binary does not contain ${router.module}`, absent: true };
  if (router.since && compareVersions(version, router.since) < 0) {
    return { skipped: `${router.module} ${version} is older than ${router.since}, the oldest release whose routes gotel reads` };
  }
  const programs: Record<string, number[]> = {};
  const how: string[] = [];
  for (const [program, fn] of Object.entries(router.programs)) {
    const site = exe.entrySite(fn);
    if (!site) return { skipped: `${fn} is not in the binary (not linked in, or inlined)`, ...(routerPresent(router)(exe) ? {} : { absent: true as const }) };
    programs[program] = [site.offset];
    how.push(`${fn} entry ${site.emulated ? "(emulated)" : "(single-stepped)"}`);
  }
  const needs = routerNeeds(router);
  if (needs.length === 0) return { programs, offsets: {}, userOffsets: {}, how: how.join("; ") };
  const r = resolveOffsets(exe, needs, table);
  if ("skipped" in r) return r;
  const offsets: Record<string, number | undefined> = {};
  const userOffsets: Record<string, number> = {};
  for (const [key, o] of Object.entries(r.offsets)) {
    if (key in router.fields) offsets[key] = o;
    else if (o !== undefined) userOffsets[key] = o;
  }
  return { programs, offsets, userOffsets, offsetsSource: r.source, ...(r.note ? { offsetsNote: r.note } : {}), how: how.join("; ") };
}

export function routerReadiness(router: Router) {
  return (exe: GoExecutable): Readiness => {
    const p = planRouter(exe, router);
    if ("skipped" in p) return { status: "skipped", reason: p.skipped };
    return {
      status: "ready",
      reason: `${p.how}: http.route for the server spans of its requests`,
      ...(p.offsetsSource ? { offsetsSource: p.offsetsSource } : {}),
      ...(p.offsetsNote ? { offsetsNote: p.offsetsNote } : {}),
    };
  };
}

/** httprouter's node offsets, by the names its userFields give them */
function nodeOffsets(o: Record<string, number>): NodeOffsets {
  const at = (k: keyof NodeOffsets): number => {
    const v = o[k];
    if (v === undefined) throw new Error(`httprouter routes: no offset for node.${k}`);
    return v;
  };
  return { path: at("path"), wildChild: at("wildChild"), nType: at("nType"), indices: at("indices"), children: at("children"), handle: at("handle") };
}
