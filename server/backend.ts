// One backend connection to PostgreSQL per client session, plus the queue of responses it owes.
//
// Every frontend message Winnow forwards that makes Postgres answer is recorded as a pending entry;
// every backend message is routed to the head entry: to the client (the fast path: framed messages are
// forwarded as raw buffers), to an internal query Winnow runs itself, or — for answers Winnow produces
// itself — synthesised bytes are released to the client when their turn comes. This keeps the order of
// responses exactly as the client expects, with the extended-protocol rule that after an error Postgres
// skips everything up to Sync.
import net from 'node:net';
import { serialize } from 'pg-protocol';
import { Framer } from './protocol/framer.ts';
import {
  B, F, CANCEL_REQUEST_CODE, ReadyForQuery, decodeErrorFields, decodeRowDescription, decodeDataRow,
  decodeCommandComplete, type TransactionStatus, type FieldDescription, type ErrorFields,
} from './protocol/messages.ts';

export type BackendTarget = { host: string; port: number } | { path: string };

/** Opens a socket to Postgres (TCP or Unix socket) with Nagle off. */
export function connectBackend(target: BackendTarget, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`timeout connecting to PostgreSQL at ${describeTarget(target)}`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      sock.removeListener('error', onError);
      resolve(sock);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    sock.once('error', onError);
  });
}

export function describeTarget(t: BackendTarget): string {
  return 'path' in t ? t.path : `${t.host}:${t.port}`;
}

/** Sends a CancelRequest for (processId, secretKey) to the Postgres at `target`. */
export async function sendCancel(target: BackendTarget, processId: number, secretKey: Buffer): Promise<void> {
  const sock = await connectBackend(target, 5_000);
  const pkt = Buffer.alloc(12 + secretKey.length);
  pkt.writeInt32BE(pkt.length, 0);
  pkt.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  pkt.writeInt32BE(processId, 8);
  secretKey.copy(pkt, 12);
  await new Promise<void>((resolve) => {
    sock.on('error', () => resolve());
    sock.on('close', () => resolve());
    sock.end(pkt);
  });
}

/** Result of a query Winnow runs itself on the session's backend connection. */
export interface InternalResult {
  fields: FieldDescription[];
  /** Text-format values (null = SQL NULL), one array per row. */
  rows: (string | null)[][];
  commandTags: string[];
  error?: ErrorFields;
}

interface InternalEntry {
  kind: 'internal';
  fields: FieldDescription[];
  rows: (string | null)[][];
  tags: string[];
  error?: ErrorFields;
  resolve(r: InternalResult): void;
}

interface LocalEntry {
  kind: 'local';
  frames: Buffer[];
  /** Append ReadyForQuery with the connection's transaction status when released. */
  readyForQuery: boolean;
  /** Part of an extended-protocol batch (dropped with it when Postgres skips to Sync after an error). */
  extended: boolean;
}

/**
 * A pending response: a number is a forwarded client message (its frontend type byte, the fast path
 * allocates nothing), or an internal query, or a locally produced answer.
 */
type Pending = number | InternalEntry | LocalEntry;

const EXTENDED = new Set<number>([F.Parse, F.Bind, F.Describe, F.Execute, F.Close]);

/** Does backend message `t` complete the response to frontend message `f`? */
function completes(f: number, t: number): boolean {
  switch (f) {
    case F.Parse: return t === B.ParseComplete || t === B.ErrorResponse;
    case F.Bind: return t === B.BindComplete || t === B.ErrorResponse;
    case F.Describe: return t === B.RowDescription || t === B.NoData || t === B.ErrorResponse;
    case F.Execute:
      return t === B.CommandComplete || t === B.EmptyQueryResponse || t === B.PortalSuspended || t === B.ErrorResponse;
    case F.Close: return t === B.CloseComplete || t === B.ErrorResponse;
    default: return t === B.ReadyForQuery; // Query, Sync, FunctionCall
  }
}

export interface BackendSink {
  /** Backend messages for the client, in order: each buffer holds one or more complete messages. */
  toClient(data: Buffer[]): void;
  /** The backend connection closed (after delivering everything it sent). */
  backendClosed(err?: Error): void;
}

export class Backend {
  readonly framer = new Framer(true, 0x7fffffff);
  private readonly queue: Pending[] = [];
  private qh = 0; // index of the head entry (amortised O(1) dequeue)
  txStatus: TransactionStatus = 'I';
  /** The settings Postgres reports with ParameterStatus (TimeZone, DateStyle, …), as it last reported them. */
  readonly serverParams = new Map<string, string>();
  /** Postgres is in COPY IN mode (CopyInResponse seen, CopyDone/CopyFail not yet sent). */
  copyIn = false;
  /** An extended-protocol batch has been forwarded and not yet closed by Sync. */
  batchOpen = false;
  processId = 0;
  secretKey: Buffer = Buffer.alloc(0);
  closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly socket: net.Socket,
    readonly target: BackendTarget,
    private sink: BackendSink,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onClose(err));
    socket.on('close', () => this.onClose());
  }

  /** Number of responses still owed. */
  get pending(): number {
    return this.queue.length - this.qh;
  }

  /** Write raw frontend bytes to Postgres; returns false if the socket buffer is full. */
  write(buf: Buffer): boolean {
    if (this.closed) return true;
    return this.socket.write(buf);
  }

  /** Record that frontend message `type` was forwarded (call in forwarding order). */
  expect(type: number): void {
    if (type === F.Flush) return;
    if (this.copyIn) {
      // Postgres ignores Sync and Flush in COPY IN mode; CopyDone/CopyFail end it.
      if (type === F.CopyDone || type === F.CopyFail) this.copyIn = false;
      return;
    }
    if (type === F.CopyData || type === F.CopyDone || type === F.CopyFail || type === F.Terminate) return;
    if (EXTENDED.has(type)) this.batchOpen = true;
    else if (type === F.Sync) this.batchOpen = false;
    this.queue.push(type);
  }

  /**
   * Queue an answer Winnow produced itself; it is sent to the client after every response owed before
   * it. `readyForQuery` appends ReadyForQuery with the current transaction status.
   */
  respond(frames: Buffer[], readyForQuery: boolean): void {
    const entry: LocalEntry = { kind: 'local', frames, readyForQuery, extended: this.batchOpen };
    if (this.pending === 0) this.releaseLocal(entry, []);
    else this.queue.push(entry);
  }

  /**
   * Runs a query on this session's backend connection between client messages (simple protocol,
   * text results). Waits until the client is not in the middle of an extended batch or COPY (a simple
   * Query there would commit the batch's implicit transaction, or be skipped after an error).
   */
  async query(text: string): Promise<InternalResult> {
    while (this.batchOpen || this.copyIn) {
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
    if (this.closed) throw new Error('backend connection closed');
    return new Promise<InternalResult>((resolve) => {
      this.queue.push({ kind: 'internal', fields: [], rows: [], tags: [], resolve });
      this.socket.write(serialize.query(text));
    });
  }

  private releaseLocal(e: LocalEntry, out: Buffer[]): void {
    const frames = e.readyForQuery ? [...e.frames, ReadyForQuery(this.txStatus)] : e.frames;
    if (out.length === 0 && this.pending === 0) this.sink.toClient(frames);
    else for (const f of frames) out.push(f);
  }

  private shift(): void {
    this.qh++;
    if (this.qh > 1024 && this.qh * 2 > this.queue.length) {
      this.queue.splice(0, this.qh);
      this.qh = 0;
    }
  }

  /** After the head completed: release local answers that are now at the head. */
  private releaseHeads(out: Buffer[]): void {
    while (this.qh < this.queue.length) {
      const h = this.queue[this.qh];
      if (typeof h !== 'object' || h.kind !== 'local') break;
      this.shift();
      const frames = h.readyForQuery ? [...h.frames, ReadyForQuery(this.txStatus)] : h.frames;
      for (const f of frames) out.push(f);
    }
    if (!this.batchOpen && !this.copyIn && this.idleWaiters.length) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  /** Postgres skips to Sync after an error in an extended message: drop what it will not answer. */
  private skipToSync(): void {
    while (this.qh < this.queue.length) {
      const h = this.queue[this.qh];
      if (h === F.Sync) break;
      if (typeof h === 'object' && h.kind === 'local' && !h.extended) break;
      if (typeof h === 'object' && h.kind === 'internal') break;
      this.shift();
    }
  }

  /**
   * Routes backend messages. Messages for the client are not sliced one by one: runs of consecutive
   * client-bound messages go out as single views of the receive buffer (the zero-copy fast path); only
   * messages for internal queries are cut out individually.
   */
  private onData(chunk: Buffer): void {
    this.framer.push(chunk);
    const out: Buffer[] = [];
    try {
      let run: Buffer | null;
      while ((run = this.framer.peekRun()) !== null) {
        const n = run.length;
        let p = 0;
        let start = 0;
        while (p + 5 <= n) {
          const len = run.readInt32BE(p + 1);
          if (len < 4) throw new Error(`invalid backend message length ${len}`);
          const end = p + 1 + len;
          if (end > n) break;
          const t = run[p];
          if (t === B.ReadyForQuery) this.txStatus = String.fromCharCode(run[p + 5]) as TransactionStatus;
          else if (t === B.CopyInResponse) this.copyIn = true;
          else if (t === B.ParameterStatus) this.noteParameterStatus(run.subarray(p + 5, end));
          const head = this.qh < this.queue.length ? this.queue[this.qh] : undefined;
          if (typeof head === 'number') {
            if (completes(head, t)) {
              this.shift();
              if (t === B.ErrorResponse && EXTENDED.has(head)) this.skipToSync();
              if (t === B.ReadyForQuery) this.copyIn = false;
              if (this.localAtHead() || this.idleWaiters.length) {
                out.push(run.subarray(start, end));
                start = end;
                this.releaseHeads(out);
              }
            }
          } else if (head !== undefined && head.kind === 'internal') {
            if (p > start) out.push(run.subarray(start, p));
            start = end;
            this.routeInternal(head, t, run.subarray(p, end), out);
          }
          // else: nothing pending (NoticeResponse/NotificationResponse/ParameterStatus, or a FATAL on shutdown) → client
          p = end;
        }
        if (p > start) out.push(run.subarray(start, p));
        this.framer.consume(p); // an incomplete message may remain: peekRun() returns null until it is whole
      }
    } catch (err) {
      // Postgres sent something unframeable: nothing sane can follow.
      if (out.length) this.sink.toClient(out);
      this.socket.destroy(err as Error);
      return;
    }
    if (out.length) this.sink.toClient(out);
  }

  private noteParameterStatus(body: Buffer): void {
    const nul = body.indexOf(0);
    const end = body.indexOf(0, nul + 1);
    if (nul > 0 && end > nul) this.serverParams.set(body.toString('utf8', 0, nul), body.toString('utf8', nul + 1, end));
  }

  private localAtHead(): boolean {
    if (this.qh >= this.queue.length) return false;
    const h = this.queue[this.qh];
    return typeof h === 'object' && h.kind === 'local';
  }

  private routeInternal(head: InternalEntry, t: number, f: Buffer, out: Buffer[]): void {
    switch (t) {
      case B.RowDescription: head.fields = decodeRowDescription(f); break;
      case B.DataRow: head.rows.push(decodeDataRow(f).map((v) => (v === null ? null : v.toString('utf8')))); break;
      case B.CommandComplete: head.tags.push(decodeCommandComplete(f)); break;
      case B.ErrorResponse: head.error = decodeErrorFields(f); break;
      case B.NotificationResponse: case B.ParameterStatus: out.push(f); break;
      case B.CopyInResponse:
        // An internal query must not start COPY FROM STDIN: fail it so Postgres returns to normal.
        this.socket.write(serialize.copyFail('COPY FROM STDIN is not supported in internal queries'));
        this.copyIn = false;
        break;
      case B.ReadyForQuery:
        this.shift();
        head.resolve({ fields: head.fields, rows: head.rows, commandTags: head.tags, error: head.error });
        this.releaseHeads(out);
        break;
      default: break; // NoticeResponse, EmptyQueryResponse, CopyOut data of internal queries: not for the client
    }
  }

  private onClose(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // Anything still waiting on this connection fails.
    for (let i = this.qh; i < this.queue.length; i++) {
      const h = this.queue[i];
      if (typeof h === 'object' && h.kind === 'internal') {
        h.resolve({ fields: h.fields, rows: h.rows, commandTags: h.tags, error: { severity: 'FATAL', code: '08006', message: 'backend connection closed' } });
      }
    }
    this.queue.length = 0;
    this.qh = 0;
    for (const w of this.idleWaiters) w();
    this.idleWaiters = [];
    this.sink.backendClosed(err);
  }

  /** Close the backend connection (Terminate, then end). */
  terminate(): void {
    if (this.closed) return;
    this.socket.end(serialize.end());
    // If Postgres does not close promptly, drop it.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
