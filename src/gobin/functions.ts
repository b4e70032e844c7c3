/**
 * The functions of a Go executable by name: from `.symtab` when the binary has one (exact names and sizes), else
 * from `.gopclntab`, which even a stripped Go binary keeps. Either way every function carries the file offset a
 * uprobe needs.
 */
import { type ElfFile, type ElfSymbol, PF_X, PT_LOAD } from "./elf.ts";
import { type GoFunction, PclntabError, readPclntab } from "./pclntab.ts";

export type { GoFunction } from "./pclntab.ts";

export interface FunctionTable {
  source: "symtab" | "pclntab";
  /** The function of that name (the lowest-addressed one if several share it, as closures of generics can). */
  get(name: string): GoFunction | undefined;
  /** every function, sorted by entry */
  all(): GoFunction[];
}

export function readFunctions(elf: ElfFile): FunctionTable {
  const fromSymtab = symtabFunctions(elf);
  if (fromSymtab) return table("symtab", fromSymtab);
  return table("pclntab", readPclntab(elf));
}

/**
 * Go's functions in `.symtab`: FUNC symbols inside Go's text (runtime.text..runtime.etext), which leaves out the C
 * code of externally linked binaries, zero-size symbols (boundary markers, labels in C assembly), and the
 * `pkg(.text)` section symbols of internally linked C objects. Undefined when there is no `.symtab` (or no Go text markers in it).
 */
function symtabFunctions(elf: ElfFile): GoFunction[] | undefined {
  const syms = elf.symbols();
  if (syms.length === 0) return undefined;
  const marker = (name: string): ElfSymbol | undefined => syms.find((s) => s.name === name);
  const text = marker("runtime.text");
  const etext = marker("runtime.etext");
  if (!text || !etext || etext.value < text.value) return undefined;
  const out: GoFunction[] = [];
  for (const s of syms) {
    if (!s.isFunction || s.size === 0 || s.value < text.value || s.value >= etext.value || SECTION_SYMBOL.test(s.name)) continue;
    const fileOffset = elf.fileOffset(s.value);
    if (fileOffset === undefined || !executable(elf, s.value)) {
      throw new PclntabError(elf.name, `.symtab: function ${s.name} at 0x${s.value.toString(16)} is outside every executable loaded segment (PT_LOAD program header)`);
    }
    out.push({ name: s.name, entry: s.value, end: s.value + s.size, fileOffset });
  }
  return out.sort((a, b) => a.entry - b.entry);
}

/** `runtime/cgo(.text.unlikely)`: the linker's symbol for a section of an internally linked C object */
const SECTION_SYMBOL = /\(\.text[^)]*\)$/;

function executable(elf: ElfFile, vaddr: number): boolean {
  return elf.segments.some((p) => p.type === PT_LOAD && (p.flags & PF_X) !== 0 && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
}

function table(source: FunctionTable["source"], fns: GoFunction[]): FunctionTable {
  const byName = new Map<string, GoFunction>();
  for (const f of fns) if (!byName.has(f.name)) byName.set(f.name, f);
  return {
    source,
    get(name) {
      const f = byName.get(name);
      if (f || source === "symtab" || !name.endsWith(".abi0")) return f;
      // the pclntab cannot tell a lone ABI0 function's `.abi0` symbol name (see pclntab.ts symtabNames)
      return byName.get(name.slice(0, -".abi0".length));
    },
    all: () => fns,
  };
}
