// SHOW winnow.index_status (one row per index) and SHOW winnow.replication_lag (WAL not yet applied).
import { CommandComplete, DataRow, RowDescription } from '../../server/protocol/messages.ts';
import type { DatabaseIndexes } from '../../sync/index-manager.ts';
import { bigIntToLsn } from '../../sync/pgoutput.ts';

type Node = Record<string, any>;

export const STATUS_SETTINGS = ['winnow.index_status', 'winnow.replication_lag'];

/** The SHOW name when the statement is one of Winnow's status SHOWs, else null. */
export function statusShow(stmt: Node): string | null {
  const name = stmt.VariableShowStmt ? String(stmt.VariableShowStmt.name).toLowerCase() : '';
  return STATUS_SETTINGS.includes(name) ? name : null;
}

export async function showStatus(db: DatabaseIndexes, what: string): Promise<Buffer[]> {
  const now = await db.currentLsn();
  const lag = now > db.processedLsn ? now - db.processedLsn : 0n;
  // Then read-your-writes, so the row counts include everything committed before SHOW.
  await db.waitFor(now).catch(() => {});
  const text = (name: string) => ({ name, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 as const });
  if (what === 'winnow.replication_lag') {
    return [RowDescription([text('replication_lag')]), DataRow([`${lag} bytes, ${db.lastPollAt ? Date.now() - db.lastPollAt : -1} ms since last poll`]), CommandComplete('SHOW')];
  }
  const cols = ['index_name', 'table_name', 'column_name', 'metric', 'access_method', 'ready', 'rows', 'trained', 'origin', 'applied_lsn', 'lag_bytes', 'snapshot_lsn', 'unsaved_changes', 'snapshot_errors', 'build_phase'];
  const rows = [...db.indexes.values()].map((li) => {
    const st = li.index.stats();
    return DataRow([
      li.meta.name, `${li.meta.schema}.${li.meta.table}`, li.meta.column, li.meta.metric, li.meta.accessMethod, String(li.ready), String(li.index.size),
      String(li.index.isTrained), li.origin, bigIntToLsn(db.processedLsn), String(lag), li.savedLsn ? bigIntToLsn(li.savedLsn) : null,
      String(li.unsaved), String(db.saveErrors), `${li.progress.phase} ${li.progress.done}/${li.progress.total}` + (st.nlist ? ` nlist=${st.nlist}` : ''),
    ]);
  });
  return [RowDescription(cols.map(text)), ...rows, CommandComplete('SHOW')];
}

