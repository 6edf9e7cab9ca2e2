// CREATE EXTENSION vector / DROP EXTENSION vector on a Postgres without pgvector.
//
// Decision for a backing Postgres that has pgvector installable (pg_available_extensions lists
// 'vector'): the statement passes through untouched and real pgvector is used; Winnow then does no
// vector translation for that database (its types are not Winnow's float4-array types).
// Otherwise the statement is replaced by one DO statement (sql/migrations.ts) that applies Winnow's
// migrations, so it is transactional with the client's transaction; the command tag is restored to
// CREATE EXTENSION / DROP EXTENSION on the way back.
import { installStatement, uninstallStatement } from './migrations.ts';

type Node = Record<string, any>;

export interface ExtensionCommand {
  /** SQL to run instead of the statement. */
  sql: string;
  /** Command tag the client must see instead of DO. */
  tag: 'CREATE EXTENSION' | 'DROP EXTENSION';
}

/** Returns the replacement for CREATE/DROP EXTENSION vector, or undefined for anything else. */
export function extensionCommand(stmt: Node): ExtensionCommand | undefined {
  const create = stmt.CreateExtensionStmt;
  if (create) {
    if (create.extname !== 'vector') return undefined;
    return { sql: installStatement(Boolean(create.if_not_exists)), tag: 'CREATE EXTENSION' };
  }
  const drop = stmt.DropStmt;
  if (drop && drop.removeType === 'OBJECT_EXTENSION') {
    const names: string[] = (drop.objects ?? []).map((o: Node) => o.String?.sval);
    if (names.length !== 1 || names[0] !== 'vector') return undefined;
    return { sql: uninstallStatement(Boolean(drop.missing_ok), drop.behavior === 'DROP_CASCADE'), tag: 'DROP EXTENSION' };
  }
  return undefined;
}

/** Whether the backing Postgres can install real pgvector (then Winnow passes the statement through). */
export const PGVECTOR_AVAILABLE_SQL = `SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'vector') AS available`;
