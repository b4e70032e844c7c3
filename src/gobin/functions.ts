/**
 * The functions of a Go executable by name: from `.symtab` when the binary has one (exact names and sizes), else
 * from `.gopclntab`, which even a stripped Go binary keeps. Either way every function carries the file offset a
 * uprobe needs.
 */
import { type ElfFile, PF_X, PT_LOAD, STT_FUNC } from "./elf.ts";
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
  let text: number | undefined;
  let etext: number | undefined;
  const has = elf.walkSymbols(".symtab", (r) => {
    if (text === undefined && r.nameIs("runtime.text")) text = r.value;
    else if (etext === undefined && r.nameIs("runtime.etext")) etext = r.value;
  });
  if (!has || text === undefined || etext === undefined || etext < text) return undefined;
  const [lo, hi] = [text, etext];
  const out: GoFunction[] = [];
  elf.walkSymbols(".symtab", (r) => {
    if (r.type !== STT_FUNC || r.size === 0 || r.value < lo || r.value >= hi) return;
    const name = r.name();
    if (SECTION_SYMBOL.test(name)) return;
    const fileOffset = elf.fileOffset(r.value);
    if (fileOffset === undefined || !executable(elf, r.value)) {
      throw new PclntabError(elf.name, `.symtab: function ${name} at 0x${r.value.toString(16)} is outside every executable loaded segment (PT_LOAD program header)`);
    }
    out.push({ name, entry: r.value, end: r.value + r.size, fileOffset });
  });
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
