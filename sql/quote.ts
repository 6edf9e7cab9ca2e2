// Quoting for SQL text that Winnow writes itself (rewritten statements, internal queries, DDL).

/**
 * An identifier, always double-quoted: names here come from the catalog or the parse tree and are
 * exact, and quoting is the only way to be safe for reserved words ("order", "user", "from").
 */
export function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** A string literal (standard_conforming_strings, the default since PostgreSQL 9.1). */
export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
