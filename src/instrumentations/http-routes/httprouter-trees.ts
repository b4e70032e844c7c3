/**
 * julienschmidt/httprouter keeps no route template: its radix tree holds the routes' pieces (static runs, `:name`
 * and `*name` nodes), and a lookup (`(*node).getValue`) walks them. The kernel notes which tree a request's path
 * was looked up in (http_routes.bpf.c); here the walk is done again over the target's memory, joining the
 * pieces of the nodes it passes into the route — `/users/:id`, `/src/*filepath` — and nothing where getValue
 * found no handle. Nodes are read through /proc/PID/mem and kept per process; routes added after a process's
 * first requests are seen once the cache is dropped (every CACHE_MS).
 */
import type { MemoryReader } from "../../gobin/runtime-types.ts";

/** node.nType (httprouter's nodeType: static, root, param, catchAll) */
const PARAM = 2;
const CATCH_ALL = 3;
const CACHE_MS = 10_000;
/** a walk never goes deeper than this (a corrupt or changing tree cannot loop) */
const MAX_STEPS = 64;
const MAX_STRING = 4096;
const MAX_CHILDREN = 256;

/** byte offsets in httprouter.node, by field name */
export interface NodeOffsets {
  path: number;
  wildChild: number;
  nType: number;
  indices: number;
  children: number;
  handle: number;
}

interface TreeNode {
  path: string;
  wildChild: boolean;
  type: number;
  indices: string;
  children: number[];
  hasHandle: boolean;
}

interface ProcessTrees {
  /** the process's memory, asked when a route is wanted (the agent opens it lazily) */
  memory: () => MemoryReader | undefined;
  offsets: NodeOffsets;
  nodes: Map<number, TreeNode | undefined>;
  since: number;
}

const latin1 = new TextDecoder("latin1");

/** The processes whose httprouter trees gotel walks: registered when its probes attach, forgotten with it. */
export class HttpRouterTrees {
  private readonly processes = new Map<number, ProcessTrees>();

  register(tgid: number, memory: () => MemoryReader | undefined, offsets: NodeOffsets): void {
    this.processes.set(tgid, { memory, offsets, nodes: new Map(), since: Date.now() });
  }

  forget(tgid: number): void {
    this.processes.delete(tgid);
  }

  /** The route getValue matched for `path` in the tree at `root`, undefined when it matched none. */
  route(tgid: number, root: number, path: string): string | undefined {
    const p = this.processes.get(tgid);
    const read = p?.memory();
    if (!p || !read || root === 0) return undefined;
    if (Date.now() - p.since > CACHE_MS) {
      p.nodes.clear();
      p.since = Date.now();
    }
    return walk(root, path, (addr) => {
      if (!p.nodes.has(addr)) p.nodes.set(addr, readNode(read, p.offsets, addr));
      return p.nodes.get(addr);
    });
  }
}

/** The one registry: the httprouter probe fills it, the net/http server's spans ask it. */
export const httpRouterTrees = new HttpRouterTrees();

/** getValue's walk (httprouter v1.2.0-v1.3.0, tree.go), keeping the pieces of the nodes it goes through. */
export function walk(root: number, path: string, node: (addr: number) => TreeNode | undefined): string | undefined {
  let n = node(root);
  let rest = path;
  let route = "";
  for (let step = 0; n && step < MAX_STEPS; step++) {
    if (rest.length > n.path.length) {
      if (!rest.startsWith(n.path)) return undefined;
      rest = rest.slice(n.path.length);
      route += n.path;
      if (!n.wildChild) {
        const i = n.indices.indexOf(rest[0]!);
        if (i < 0 || n.children[i] === undefined) return undefined;
        n = node(n.children[i]!);
        continue;
      }
      const wild = n.children[0] === undefined ? undefined : node(n.children[0]);
      if (!wild) return undefined;
      if (wild.type === CATCH_ALL) return wild.hasHandle ? route + wild.path : undefined;
      if (wild.type !== PARAM) return undefined;
      const slash = rest.indexOf("/");
      const end = slash < 0 ? rest.length : slash;
      route += wild.path;
      if (end === rest.length) return wild.hasHandle ? route : undefined;
      if (wild.children[0] === undefined) return undefined;
      rest = rest.slice(end);
      n = node(wild.children[0]);
      continue;
    }
    return rest === n.path && n.hasHandle ? route + n.path : undefined;
  }
  return undefined;
}

function readNode(read: MemoryReader, o: NodeOffsets, addr: number): TreeNode | undefined {
  const size = Math.max(o.path + 16, o.wildChild + 1, o.nType + 1, o.indices + 16, o.children + 24, o.handle + 8);
  const raw = read(addr, size);
  if (!raw) return undefined;
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const word = (at: number): number => Number(v.getBigUint64(at, true));
  const string = (at: number): string | undefined => {
    const [ptr, len] = [word(at), word(at + 8)];
    if (len === 0) return "";
    if (len > MAX_STRING) return undefined;
    const bytes = read(ptr, len);
    return bytes ? latin1.decode(bytes) : undefined;
  };
  const path = string(o.path);
  const indices = string(o.indices);
  const [childrenPtr, childrenLen] = [word(o.children), word(o.children + 8)];
  if (path === undefined || indices === undefined || childrenLen > MAX_CHILDREN) return undefined;
  const childWords = childrenLen ? read(childrenPtr, childrenLen * 8) : new Uint8Array(0);
  if (!childWords) return undefined;
  const cv = new DataView(childWords.buffer, childWords.byteOffset, childWords.byteLength);
  const children = Array.from({ length: childrenLen }, (_, i) => Number(cv.getBigUint64(i * 8, true)));
  return { path, wildChild: v.getUint8(o.wildChild) !== 0, type: v.getUint8(o.nType), indices, children, hasHandle: word(o.handle) !== 0 };
}
