// Vector queries inside a transaction block. The index holds what is committed (it follows the WAL),
// so it may answer for a transaction exactly when Postgres would see the same rows:
//   - READ COMMITTED: each statement sees everything committed before it starts, which is what the
//     index holds after the read-your-writes wait (REPEATABLE READ and SERIALIZABLE keep the
//     transaction's first snapshot, which the index cannot go back to);
//   - nothing written by this transaction yet: no transaction id assigned. Any write (INSERT, UPDATE,
//     DELETE, DDL, a function that writes) assigns one, and its uncommitted rows, invisible to the
//     index, must be seen by the transaction's own queries. txid_current_if_assigned() (PG 10+)
//     assigns nothing itself.
// Otherwise the statement runs in Postgres unchanged (exact). One round trip on the session's
// connection per vector query; it cannot fail, so it never aborts the client's transaction.
import type { SessionContext } from '../../server/session.ts';

export const transactionStats = { checks: 0, allowed: 0 };

/** True when the index may answer a vector query of the session's open transaction block. */
export async function indexMayAnswerInTransaction(ctx: SessionContext): Promise<boolean> {
  transactionStats.checks++;
  const r = await ctx.query(`SELECT (current_setting('transaction_isolation') = 'read committed' AND txid_current_if_assigned() IS NULL)::text`);
  const ok = !r.error && r.rows[0]?.[0] === 'true';
  if (ok) transactionStats.allowed++;
  return ok;
}
