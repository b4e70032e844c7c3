/**
 * How the offsets generator (scripts/offsets/generate.ts) learns a third-party module's struct fields: a small Go
 * program that requires the module and makes the types an instrumentation reads reachable, so that they appear in
 * its DWARF. The generator builds it for every release from `since` on and records the fields the instrumentations
 * need. Each instrumentation declares its programs in its own folder; the standard library needs none.
 */
export interface FieldsProgram {
  /** the module path, e.g. "github.com/lib/pq" */
  module: string;
  /** the oldest release the table covers */
  since: string;
  /** main.go's imports besides "os", quoted as Go writes them (`_ "github.com/jackc/pgx/v5/stdlib"`) */
  imports: readonly string[];
  /** statements in main's body (never run) that append values of the read types to `sink []any`; `os.Args` keeps
   * the compiler from proving them constant */
  body: string;
}
