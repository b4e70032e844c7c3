/**
 * A router's probes (http_routes.bpf.c beside it) as a SpanProbe that makes no spans of its own: it notes
 * routes for the net/http server's spans. Each router loads the object for itself, with its own config map.
 */
import type { GoExecutable } from "../../gobin/analyze.ts";
import type { TargetMemory } from "../../gobin/runtime-types.ts";
import { ProbeObject, type LoadOptions } from "../../probes/probe-object.ts";
import { ObjectSpanProbe, siteCount, type Prepared } from "../../probes/span-probe.ts";
import type { SpanRecord } from "../../traces/span.ts";
import { planRouter, type Router } from "./routers.ts";

export class RouterProbe extends ObjectSpanProbe {
  readonly name: string;

  private constructor(object: ProbeObject, private readonly router: Router, private readonly memory: (tgid: number) => TargetMemory | undefined) {
    super(object);
    this.name = router.name;
  }

  static load(router: Router, opts: LoadOptions, memory: (tgid: number) => TargetMemory | undefined): RouterProbe {
    return new RouterProbe(ProbeObject.load("http_routes", opts), router, memory);
  }

  prepare(exe: GoExecutable): Prepared | { skipped: string; absent?: true } {
    const p = planRouter(exe, this.router);
    if ("skipped" in p) return p;
    return {
      ...(p.offsetsSource ? { offsetsSource: p.offsetsSource } : {}),
      ...(p.offsetsNote ? { offsetsNote: p.offsetsNote } : {}),
      sites: siteCount(p.programs),
      attach: (tgid, path) => {
        const links = this.object.attach(tgid, path, p.offsets, p.programs);
        this.router.attached?.(tgid, p.userOffsets, () => this.memory(tgid)?.read);
        return links;
      },
    };
  }

  override forget(tgid: number): void {
    super.forget(tgid);
    this.router.forgotten?.(tgid);
  }

  record(): SpanRecord | undefined {
    throw new Error(`${this.name}: its probes send no events`);
  }

  override unfinished(): SpanRecord[] {
    return [];
  }
}
