/**
 * The names of Go runtime types (internal/abi.Type) in an executable, e.g. "*net.OpError" for the dynamic type
 * of an error a probe saw. A type's name is a nameOff (abi.Type.Str, int32 at +40) relative to the module's
 * type data, runtime.types: the start of the `.go.type` section (Go >= 1.26) or `.rodata` (older) when Go's own
 * linker wrote the file, 32 bytes or more into `.rodata` when an external linker (cgo with C libraries) put C's
 * read-only data first — so it is taken from moduledata.types. The name is
 * a flags byte, a uvarint length and the bytes; tflagExtraStar (abi.Type.TFlag at +20, bit 1) means the stored
 * name carries a '*' that is not part of it. Layout unchanged from Go 1.17 through 1.27 (64-bit).
 */
import { closeSync, openSync, readFileSync, readlinkSync, readSync } from "node:fs";
import type { ElfFile } from "./elf.ts";
import { moduledataTypeRange, moduledataTypes } from "./pclntab.ts";

const TYPE_TFLAG = 20;
const TYPE_STR = 40;
const TFLAG_EXTRA_STAR = 1 << 1;
const MAX_NAME = 512;

/** Reads n bytes at an address (of a file's image or of a live process), undefined when they are not there. */
export type MemoryReader = (addr: number, n: number) => Uint8Array | undefined;

/** A live target's memory and the names of the Go types at its runtime addresses. */
export interface TargetMemory {
  read: MemoryReader;
  typeName(addr: number): string | undefined;
}

/**
 * runtime.types: where the module's type data starts (link-time address): moduledata.types, else the start of
 * `.go.type` / `.rodata` (right for Go's own linker only). Not from the symbol table: parsing every symbol of a
 * large binary costs tens of MB of heap for one address.
 */
export function typesBase(elf: ElfFile, goVersion: string): number | undefined {
  return moduledataTypes(elf, goMinor(goVersion)) ?? (elf.section(".go.type") ?? elf.section(".rodata"))?.addr;
}

/** [runtime.types, runtime.etypes) (link-time): where every runtime type descriptor of the module is. */
export function typesRange(elf: ElfFile, goVersion: string): { start: number; end: number } | undefined {
  return moduledataTypeRange(elf, goMinor(goVersion));
}

function goMinor(goVersion: string): number {
  return Number(/^1\.(\d+)/.exec(goVersion)?.[1] ?? 0);
}

export class GoTypeNames {
  private readonly cache = new Map<number, string | undefined>();

  /** base: runtime.types in the address space `read` reads */
  constructor(private readonly base: number, private readonly read: MemoryReader) {}

  /** The name of the type at this address, undefined when it cannot be read. */
  name(addr: number): string | undefined {
    if (!this.cache.has(addr)) this.cache.set(addr, this.lookup(addr));
    return this.cache.get(addr);
  }

  private lookup(addr: number): string | undefined {
    const t = this.read(addr, TYPE_STR + 4);
    if (!t || t.length < TYPE_STR + 4) return undefined;
    const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
    const nameAt = this.base + dv.getInt32(TYPE_STR, true);
    const extraStar = (dv.getUint8(TYPE_TFLAG) & TFLAG_EXTRA_STAR) !== 0;
    const head = this.read(nameAt, 4);
    if (!head || head.length < 4) return undefined;
    let len = 0;
    let i = 1;
    for (let shift = 0; i < head.length; i++, shift += 7) {
      len |= (head[i]! & 0x7f) << shift;
      if ((head[i]! & 0x80) === 0) break;
    }
    if (len === 0 || len > MAX_NAME) return undefined;
    const bytes = this.read(nameAt + i + 1, len);
    if (!bytes || bytes.length < len) return undefined;
    const name = new TextDecoder().decode(bytes);
    return extraStar && name.startsWith("*") ? name.slice(1) : name;
  }
}

/**
 * A live process's memory through /proc/PID/mem (root, or the same user with ptrace rights), opened at the first
 * read and kept: one open per process, not per read, and the file stays bound to that process (a reused pid
 * is another process, whose memory it never reads: reads fail once the process is gone). close() when done.
 */
export class ProcessMemory {
  /** null: it could not be opened (gone, or not allowed): not tried again */
  private fd: number | null | undefined;

  constructor(private readonly pid: number) {}

  readonly read: MemoryReader = (addr, n) => {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(`/proc/${this.pid}/mem`, "r");
      } catch {
        this.fd = null;
      }
    }
    if (this.fd === null) return undefined;
    try {
      const buf = new Uint8Array(n);
      return readSync(this.fd, buf, 0, n, addr) === n ? buf : undefined;
    } catch {
      return undefined;
    }
  };

  close(): void {
    if (typeof this.fd === "number") closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * How far a process's executable is loaded from its link-time addresses (0 unless it is PIE): the start of its
 * first mapping (file offset 0) minus the lowest PT_LOAD address, page-aligned. From /proc/PID/maps.
 */
export function loadBias(maps: string, exePath: string, lowestLoadVaddr: number): number | undefined {
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-[0-9a-f]+ \S+ ([0-9a-f]+) \S+ \d+\s+(.*?)( \(deleted\))?$/.exec(line);
    if (m && Number.parseInt(m[2]!, 16) === 0 && m[3] === exePath) return Number.parseInt(m[1]!, 16) - Math.floor(lowestLoadVaddr / 4096) * 4096;
  }
  return undefined;
}

/** loadBias of a live process, from its /proc files; undefined when it is gone or its executable is not mapped. */
export function processLoadBias(pid: number, lowestLoadVaddr: number): number | undefined {
  try {
    return loadBias(readFileSync(`/proc/${pid}/maps`, "utf8"), readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, ""), lowestLoadVaddr);
  } catch {
    return undefined;
  }
}
