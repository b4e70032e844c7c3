/**
 * What a SQL statement does and to which table, for OTEL_GO_AUTO_PARSE_DB_STATEMENT: `db.operation.name`
 * ("SELECT") and `db.collection.name` ("users", "public.users"), which name the span "SELECT users".
 *
 * Not a SQL parser: a tokenizer that knows comments, string literals, quoted identifiers ("x", `x`, [x]) and
 * parentheses, and a few rules per statement kind. It reads the main statement (after any WITH clauses) and
 * takes the first table it names; when that is one of the statement's own CTEs, the first table the CTEs read
 * instead. Identifiers keep the application's case; quotes are removed; schema-qualified names stay whole; a
 * string literal where a table is named is taken as its name, as SQLite does (`INSERT INTO 'contacts' …`).
 * A statement of a kind it knows but does not parse gives its leading keyword as the operation and no table;
 * one whose first word is no SQL statement (`syntax error`) gives nothing: that word is not an operation.
 */

export interface ParsedStatement {
  /** upper-case, e.g. "SELECT", "INSERT", "CREATE TABLE" */
  operation: string;
  collection?: string;
}

type Token = { kind: "word" | "ident" | "string" | "punct"; text: string; depth: number };

/** Splits into words (keywords and bare identifiers), quoted identifiers and punctuation; drops the rest. */
function tokenize(sql: string, limit = 4096): Token[] {
  const out: Token[] = [];
  let depth = 0;
  let i = 0;
  const n = sql.length;
  while (i < n && out.length < limit) {
    const c = sql[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === "-" && sql[i + 1] === "-") { i = lineEnd(sql, i); continue; }
    if (c === "#") { i = lineEnd(sql, i); continue; } // MySQL comment
    if (c === "/" && sql[i + 1] === "*") { const e = sql.indexOf("*/", i + 2); i = e < 0 ? n : e + 2; continue; }
    if (c === "'") {
      const e = quotedEnd(sql, i, "'");
      out.push({ kind: "string", text: sql.slice(i + 1, e - 1).replaceAll("''", "'"), depth });
      i = e;
      continue;
    }
    if (c === "$") { // PostgreSQL dollar quoting: $tag$ ... $tag$ (a $1 placeholder is not one)
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) { const e = sql.indexOf(m[0], i + m[0].length); i = e < 0 ? n : e + m[0].length; continue; }
    }
    if (c === '"' || c === "`") {
      const e = quotedEnd(sql, i, c);
      out.push({ kind: "ident", text: sql.slice(i + 1, e - 1).replaceAll(c + c, c), depth });
      i = e;
      continue;
    }
    if (c === "[") {
      const e = sql.indexOf("]", i + 1);
      out.push({ kind: "ident", text: sql.slice(i + 1, e < 0 ? n : e), depth });
      i = e < 0 ? n : e + 1;
      continue;
    }
    const w = /^[\p{L}_][\p{L}\p{N}_$]*/u.exec(sql.slice(i, i + 256));
    if (w) { out.push({ kind: "word", text: w[0], depth }); i += w[0].length; continue; }
    // a parenthesis is at the depth of what surrounds it; what it encloses is one deeper
    if (c === ")") depth = Math.max(0, depth - 1);
    out.push({ kind: "punct", text: c, depth });
    if (c === "(") depth++;
    i++;
  }
  return out;
}

function lineEnd(s: string, i: number): number {
  const e = s.indexOf("\n", i);
  return e < 0 ? s.length : e + 1;
}

/** The index after the closing quote; a doubled quote is an escaped one (and \' in MySQL strings). */
function quotedEnd(s: string, i: number, q: string): number {
  for (let j = i + 1; j < s.length; j++) {
    if (q === "'" && s[j] === "\\") { j++; continue; }
    if (s[j] === q) {
      if (s[j + 1] === q) { j++; continue; }
      return j + 1;
    }
  }
  return s.length;
}

const isWord = (t: Token | undefined, ...words: string[]): boolean =>
  t !== undefined && t.kind === "word" && words.includes(t.text.toUpperCase());

/** A possibly schema-qualified name starting at tokens[i]: its text and the index after it. */
function qualifiedName(tokens: Token[], i: number): { name: string; next: number } | undefined {
  const first = tokens[i];
  if (!first || first.kind === "punct") return undefined;
  const parts = [first.text];
  let j = i + 1;
  while (tokens[j]?.text === "." && tokens[j]!.kind === "punct" && tokens[j + 1] && tokens[j + 1]!.kind !== "punct") {
    parts.push(tokens[j + 1]!.text);
    j += 2;
  }
  return { name: parts.join("."), next: j };
}

/** Words that follow FROM/INTO/UPDATE/TABLE but are not the table. */
const SKIP_BEFORE_NAME = new Set(["TABLE", "ONLY", "IF", "NOT", "EXISTS", "LATERAL", "TEMPORARY", "TEMP", "UNLOGGED", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "QUICK"]);

/**
 * The first table named after one of the keywords at the statement's own depth; when that keyword is followed
 * by a subquery ("FROM (SELECT … FROM t)"), the first table named inside it.
 */
function tableAfter(tokens: Token[], start: number, keywords: string[], depth: number): string | undefined {
  for (let i = start; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.depth < depth) break;
    if (t.depth !== depth || !isWord(t, ...keywords)) continue;
    let j = i + 1;
    while (isWord(tokens[j], ...SKIP_BEFORE_NAME)) j++;
    if (tokens[j]?.text === "(") return tableAfter(tokens, j + 1, ["FROM", "JOIN"], depth + 1);
    const q = qualifiedName(tokens, j);
    // FROM name( is a table function, not a table; INTO name( has a column list
    if (q && tokens[q.next]?.text === "(" && isWord(t, "FROM", "JOIN")) return undefined;
    if (q) return q.name;
  }
  return undefined;
}

/** Skips `WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (…) [, …]`; returns the CTE names and where the main statement starts. */
function skipWith(tokens: Token[]): { names: Set<string>; start: number } {
  const names = new Set<string>();
  if (!isWord(tokens[0], "WITH")) return { names, start: 0 };
  let i = isWord(tokens[1], "RECURSIVE") ? 2 : 1;
  while (i < tokens.length) {
    const name = tokens[i];
    if (!name || name.kind === "punct") break;
    names.add(name.text.toLowerCase());
    i++;
    // optional column list, then AS, then the body in parentheses
    if (tokens[i]?.text === "(") i = closing(tokens, i) + 1;
    if (isWord(tokens[i], "AS")) i++;
    while (isWord(tokens[i], "NOT", "MATERIALIZED")) i++;
    if (tokens[i]?.text === "(") i = closing(tokens, i) + 1;
    if (tokens[i]?.text === ",") { i++; continue; }
    break;
  }
  return { names, start: i };
}

function firstTableInCtes(withClause: Token[]): string | undefined {
  for (let i = 0; i < withClause.length; i++) {
    if (withClause[i]!.text !== "(" || withClause[i]!.depth !== 0) continue;
    const t = tableAfter(withClause, i + 1, ["FROM", "INTO", "UPDATE", "JOIN"], 1);
    if (t) return t;
  }
  return undefined;
}

/** The index of the ")" that closes the "(" at tokens[i]. */
function closing(tokens: Token[], i: number): number {
  const d = tokens[i]!.depth;
  for (let j = i + 1; j < tokens.length; j++) if (tokens[j]!.text === ")" && tokens[j]!.kind === "punct" && tokens[j]!.depth === d) return j;
  return tokens.length;
}

const TARGET_KEYWORDS: Record<string, string[]> = {
  SELECT: ["FROM"],
  INSERT: ["INTO"],
  REPLACE: ["INTO"],
  UPSERT: ["INTO"],
  MERGE: ["INTO"],
  UPDATE: ["UPDATE"],
  DELETE: ["FROM"],
  TRUNCATE: ["TRUNCATE"],
  COPY: ["COPY"],
};

/** The first words of the statements of SQLite, PostgreSQL, MySQL/MariaDB and SQL Server that are not parsed further */
const STATEMENTS = new Set([
  "ANALYZE", "ATTACH", "BEGIN", "CALL", "CHECKPOINT", "CLOSE", "CLUSTER", "COMMENT", "COMMIT", "DEALLOCATE", "DECLARE",
  "DESC", "DESCRIBE", "DETACH", "DISCARD", "DO", "END", "EXEC", "EXECUTE", "EXPLAIN", "FETCH", "FLUSH", "GRANT",
  "HANDLER", "IMPORT", "KILL", "LISTEN", "LOAD", "LOCK", "MOVE", "NOTIFY", "OPTIMIZE", "PRAGMA", "PREPARE", "REFRESH",
  "REINDEX", "RELEASE", "RENAME", "RESET", "REVOKE", "ROLLBACK", "SAVEPOINT", "SECURITY", "SET", "SHOW", "START",
  "TABLE", "UNLISTEN", "UNLOCK", "USE", "VACUUM", "VALUES", "WITH",
]);

/** DDL: "CREATE TABLE x", "DROP INDEX x", "ALTER TABLE x": operation of two words, the object's name */
const DDL = new Set(["CREATE", "DROP", "ALTER"]);
const DDL_MODIFIERS = new Set(["OR", "REPLACE", "TEMPORARY", "TEMP", "UNLOGGED", "GLOBAL", "LOCAL", "UNIQUE", "MATERIALIZED", "CONCURRENTLY", "IF", "NOT", "EXISTS"]);

const cache = new Map<string, ParsedStatement | undefined>();
const CACHE_MAX = 1024;

/** parseStatement, remembered: applications run the same few hundred statements (bind parameters, not literals) */
export function parseStatementCached(sql: string): ParsedStatement | undefined {
  if (cache.has(sql)) return cache.get(sql);
  if (cache.size >= CACHE_MAX) cache.clear();
  const parsed = parseStatement(sql);
  cache.set(sql, parsed);
  return parsed;
}

export function parseStatement(sql: string): ParsedStatement | undefined {
  const tokens = tokenize(sql);
  const { names: cteNames, start } = skipWith(tokens);
  let i = start;
  // a statement in parentheses, e.g. "(SELECT …) UNION (SELECT …)": read from its first word
  while (tokens[i]?.text === "(") i++;
  const head = tokens[i];
  if (!head || head.kind !== "word") return undefined;
  const verb = head.text.toUpperCase();
  const depth = head.depth;

  if (DDL.has(verb)) {
    let j = i + 1;
    while (isWord(tokens[j], ...DDL_MODIFIERS)) j++;
    const object = tokens[j];
    if (!object || object.kind !== "word") return { operation: verb };
    j++;
    while (isWord(tokens[j], ...DDL_MODIFIERS)) j++;
    const name = qualifiedName(tokens, j);
    const operation = `${verb} ${object.text.toUpperCase()}`;
    return isWord(object, "TABLE", "VIEW") && name ? { operation, collection: name.name } : { operation };
  }

  const keywords = TARGET_KEYWORDS[verb];
  if (!keywords) return STATEMENTS.has(verb) ? { operation: verb } : undefined;
  const from = verb === "UPDATE" || verb === "COPY" || verb === "TRUNCATE" ? i : i + 1;
  let collection = tableAfter(tokens, from, keywords, depth);
  if (collection !== undefined && cteNames.has(collection.toLowerCase())) {
    // the main statement reads a CTE: name the first table the CTEs read
    collection = firstTableInCtes(tokens.slice(0, start)) ?? collection;
  }
  return collection === undefined ? { operation: verb } : { operation: verb, collection };
}
