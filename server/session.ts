// One client session ↔ one backend connection.
//
// The session terminates the client's protocol: every frontend message is framed (strict lengths) and
// dispatched by type. With no StatementHandler hooks installed the steady state is a relay of raw framed
// buffers in both directions (no re-encoding); every statement text is still parsed with libpg-query
// through the shared cache. The StatementHandler below is the seam later issues plug into.
import type net from 'node:net';
import type { Logger } from 'pino';
import { Backend, connectBackend, describeTarget, sendCancel, type BackendTarget, type InternalResult } from './backend.ts';
import { Framer, MAX_MESSAGE_SIZE, ProtocolViolation } from './protocol/framer.ts';
import {
  B, F, FRONTEND_TYPES, SMALL_FRONTEND_TYPES, ErrorResponse, decodeParse, decodeQuery, decodeTarget,
  type ParseMessage, type TransactionStatus,
} from './protocol/messages.ts';
import { serialize } from 'pg-protocol';
import { parseStatement, type ParseResult } from '../sql/parse.ts';

// ---------------------------------------------------------------- hook interface

/** A statement prepared by the client with Parse ('' = the unnamed statement). */
export interface PreparedStatement extends ParseMessage {
  parsed: ParseResult;
}

/** What a hook may do with a frontend message. `undefined` = forward it unchanged (the fast path). */
export type FrontendAction =
  | undefined
  | void
  /** Send these frontend messages to Postgres instead (rewrite; may be empty to drop the message). */
  | { forward: Buffer[] }
  /**
   * Answer here: these backend messages go to the client once every earlier response has been
   * delivered; nothing is sent to Postgres. `readyForQuery` (default: true for Query/Sync, false
   * otherwise) appends ReadyForQuery with the session's current transaction status.
   */
  | { respond: Buffer[]; readyForQuery?: boolean };

/** Hooks may be asynchronous; client messages after it wait (order is preserved). */
export type MaybePromise<T> = T | Promise<T>;

export interface SessionContext {
  readonly id: number;
  /** StartupMessage parameters (user, database, application_name, options, …). */
  readonly params: Readonly<Record<string, string>>;
  readonly transactionStatus: TransactionStatus;
  /** Settings as Postgres last reported them to this session (ParameterStatus: TimeZone, DateStyle, …). */
  readonly serverParams: ReadonlyMap<string, string>;
  readonly preparedStatements: ReadonlyMap<string, PreparedStatement>;
  readonly log: Logger;
  /** Send backend messages to the client, ordered after all responses still owed. */
  respond(frames: Buffer[], readyForQuery?: boolean): void;
  /** Run a query on this session's own backend connection between client messages. */
  query(text: string): Promise<InternalResult>;
}

/**
 * Per-session interception points. Every member is optional; a missing hook costs nothing.
 * Frames are complete protocol messages (type byte + length + body) as raw Buffers; use the decoders
 * in server/protocol/messages.ts (decodeBind, decodeRowDescription, …) when a hook needs the fields.
 */
export interface StatementHandler {
  /** Simple Query, after parsing with libpg-query (parse failures are passed through to Postgres). */
  onQuery?(ctx: SessionContext, q: { text: string; parsed: ParseResult; frame: Buffer }): MaybePromise<FrontendAction>;
  /** Parse (extended protocol): statement name, text, parameter types. */
  onParse?(ctx: SessionContext, p: PreparedStatement & { frame: Buffer }): MaybePromise<FrontendAction>;
  onBind?(ctx: SessionContext, frame: Buffer): MaybePromise<FrontendAction>;
  onDescribe?(ctx: SessionContext, frame: Buffer): MaybePromise<FrontendAction>;
  onExecute?(ctx: SessionContext, frame: Buffer): MaybePromise<FrontendAction>;
  onClose?(ctx: SessionContext, frame: Buffer): MaybePromise<FrontendAction>;
  onSync?(ctx: SessionContext, frame: Buffer): MaybePromise<FrontendAction>;
  /** CopyData/CopyDone/CopyFail from the client (COPY FROM STDIN). */
  onCopy?(ctx: SessionContext, frame: Buffer): MaybePromise<FrontendAction>;
  /**
   * Every backend message bound for the client (RowDescription, DataRow, ParameterDescription, CopyData…).
   * Return undefined to keep it, null to drop it, or replacement message(s).
   */
  onBackendMessage?(ctx: SessionContext, frame: Buffer): Buffer | Buffer[] | null | undefined;
  /** The session ended (either side closed). */
  onSessionEnd?(ctx: SessionContext): void;
}

export type StatementHandlerFactory = (ctx: SessionContext) => StatementHandler | undefined;

// ---------------------------------------------------------------- session

const NO_PARAMS: ReadonlyMap<string, string> = new Map();

/** An exception from a StatementHandler hook (as opposed to a malformed message, which ends the session). */
class HookError extends Error {
  constructor(readonly cause: unknown) {
    super('statement handler failed');
  }
}

/** Calls a hook; what it throws or rejects with becomes a HookError. */
function guard<T>(call: () => MaybePromise<T>): MaybePromise<T> {
  let r: MaybePromise<T>;
  try {
    r = call();
  } catch (err) {
    throw new HookError(err);
  }
  return r;
}

/** Splits buffers of whole backend messages into one view per message (only where a hook needs them). */
export function splitFrames(data: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const b of data) {
    let p = 0;
    while (p + 5 <= b.length) {
      const end = p + 1 + b.readInt32BE(p + 1);
      out.push(b.subarray(p, end));
      p = end;
    }
  }
  return out;
}

/**
 * Writes framed messages, merging views that are contiguous in the same receive buffer into one
 * write (the common case: a whole batch the peer sent in one packet goes out as one zero-copy write).
 */
export function writeFrames(sock: net.Socket, frames: Buffer[]): boolean {
  const n = frames.length;
  if (n === 1) return sock.write(frames[0]);
  let ok = true;
  let ab = frames[0].buffer;
  let start = frames[0].byteOffset;
  let end = start + frames[0].length;
  const flush = () => {
    ok = sock.write(Buffer.from(ab, start, end - start)) && ok;
  };
  sock.cork();
  for (let i = 1; i < n; i++) {
    const f = frames[i];
    if (f.buffer === ab && f.byteOffset === end) {
      end += f.length;
      continue;
    }
    flush();
    ab = f.buffer;
    start = f.byteOffset;
    end = start + f.length;
  }
  flush();
  sock.uncork();
  return ok;
}

export interface SessionOptions {
  id: number;
  params: Record<string, string>;
  target: BackendTarget;
  log: Logger;
  handlerFactory?: StatementHandlerFactory;
  /** Register/unregister the cancel key so CancelRequests can be routed to this session's backend. */
  onBackendKey(session: Session, processId: number, secretKey: Buffer): void;
  onEnd(session: Session): void;
  maxMessageSize?: number;
}

type Phase = 'connecting' | 'auth' | 'ready' | 'closed';

/** Placeholder until a deferred parse has run (it runs before the session reads the next client data). */
const DEFERRED: ParseResult = { ok: false, text: '', error: { message: 'not parsed yet' } };

const AUTH_NEEDS_RESPONSE = new Set([2, 3, 5, 7, 8, 9, 10, 11]);
/** Client messages pipelined before ReadyForQuery are held up to this many bytes. */
const MAX_EARLY_BYTES = 1 << 20;
/** Winnow's own answers held for the client beyond this are written without waiting for a Sync. */
const MAX_HELD_BYTES = 256 * 1024;

export class Session implements SessionContext {
  readonly id: number;
  readonly params: Record<string, string>;
  readonly log: Logger;
  readonly preparedStatements = new Map<string, PreparedStatement>();
  /** Winnow errors to put in place of the marker errors Postgres returns (hookFailed). */
  private hookErrors: { marker: Buffer; error: Buffer }[] = [];
  private hookErrorSeq = 0;
  private skippingToSync = false;
  /**
   * Messages for the client not yet written. Like Postgres, which flushes its output at Sync, Flush
   * and the end of a Query, answers Winnow produces itself while processing client messages are held
   * until such a message (or a message from Postgres) comes, then go out in one write: an index-only
   * Bind/Describe/Execute/Sync is one packet back, not four.
   */
  private clientBatch: Buffer[] = [];
  private clientBatchBytes = 0;
  private inPump = false;
  private flushAfterPump = false;
  private readonly framer: Framer;
  private backend: Backend | null = null;
  private handler: StatementHandler | undefined;
  private phase: Phase = 'connecting';
  private awaitingAuthResponse = false;
  private early: Buffer[] = [];
  private earlyBytes = 0;
  private blocked = false;
  /** A hook is running synchronously (see query()). */
  private inHook = false;
  /** Frames framed by the running pump() and not yet written to Postgres. */
  private pumpOut: Buffer[] | null = null;
  private readonly deferredParses: Array<string | PreparedStatement> = [];
  private ended = false;

  constructor(
    readonly client: net.Socket,
    private readonly opts: SessionOptions,
    initial: Buffer,
  ) {
    this.id = opts.id;
    this.params = opts.params;
    this.log = opts.log;
    this.framer = new Framer(true, opts.maxMessageSize ?? MAX_MESSAGE_SIZE, (t) => FRONTEND_TYPES.has(t), SMALL_FRONTEND_TYPES);
    if (initial.length) this.framer.push(initial);
    client.on('data', (chunk: Buffer) => {
      this.framer.push(chunk);
      this.pump();
    });
    client.on('error', (err) => this.clientGone(err));
    client.on('close', () => this.clientGone());
    client.on('drain', () => this.backend?.socket.resume());
  }

  get transactionStatus(): TransactionStatus {
    return this.backend?.txStatus ?? 'I';
  }

  get serverParams(): ReadonlyMap<string, string> {
    return this.backend?.serverParams ?? NO_PARAMS;
  }

  get target(): BackendTarget {
    return this.opts.target;
  }

  get backendProcessId(): number {
    return this.backend?.processId ?? 0;
  }

  respond(frames: Buffer[], readyForQuery = false): void {
    this.backend?.respond(frames, readyForQuery);
  }

  query(text: string): Promise<InternalResult> {
    if (!this.backend) return Promise.reject(new Error('no backend connection'));
    // Client messages framed before this hook call must reach Postgres before the internal query.
    if (this.pumpOut !== null && this.pumpOut.length > 0) {
      this.flushToBackend(this.pumpOut);
      this.pumpOut.length = 0;
    }
    if ((this.inHook || this.blocked) && (this.backend.batchOpen || this.backend.copyIn)) {
      // The client's extended-protocol batch (or COPY) is open and its Sync is held behind this hook:
      // waiting would deadlock, and a simple Query now would commit the batch's implicit transaction.
      return Promise.resolve({
        fields: [], rows: [], commandTags: [],
        error: { severity: 'ERROR', code: '0A000', message: 'Winnow cannot run an internal query inside an open extended-protocol batch or COPY' },
      });
    }
    return this.backend.query(text);
  }

  /** Connects to Postgres and relays the startup/authentication exchange. */
  async start(): Promise<void> {
    let sock: net.Socket;
    try {
      sock = await connectBackend(this.opts.target);
    } catch (err) {
      this.log.warn({ err, target: describeTarget(this.opts.target) }, 'cannot connect to PostgreSQL');
      this.fatal('08006', `could not connect to PostgreSQL: ${(err as Error).message}`);
      return;
    }
    if (this.ended) {
      sock.destroy();
      return;
    }
    const backend = new Backend(sock, this.opts.target, {
      toClient: (frames) => this.toClient(frames),
      backendClosed: (err) => this.backendGone(err),
    });
    this.backend = backend;
    sock.on('drain', () => this.client.resume());
    this.phase = 'auth';
    // The client's own startup parameters: Postgres decides roles, pg_hba and privileges.
    backend.write(serialize.startup(this.params));
    this.handler = this.opts.handlerFactory?.(this);
    this.pump();
  }

  // ------------------------------------------------------------ backend → client

  private toClient(data: Buffer[]): void {
    let frames = data;
    if (this.phase !== 'ready') this.watchStartup(splitFrames(data));
    if (this.hookErrors.length) data = frames = this.replaceHookErrors(splitFrames(data));
    const h = this.handler?.onBackendMessage;
    if (h !== undefined && this.phase === 'ready') frames = this.applyBackendHook(h, splitFrames(data));
    if (this.ended || frames.length === 0) return;
    if (this.inPump) {
      for (const f of frames) {
        this.clientBatch.push(f);
        this.clientBatchBytes += f.length;
      }
      if (this.clientBatchBytes > MAX_HELD_BYTES) this.flushAfterPump = true;
      return;
    }
    // From Postgres (or a hook that finished later): after whatever is held, in order, now.
    let out = frames;
    if (this.clientBatch.length) {
      out = this.clientBatch.concat(frames);
      this.clientBatch = [];
      this.clientBatchBytes = 0;
    }
    const ok = writeFrames(this.client, out);
    if (!ok) this.backend?.socket.pause(); // resumed on the client's 'drain'
  }

  /**
   * A hook failed: Postgres is sent a statement that fails with a marker in its message, so that it
   * aborts the transaction or skips the rest of the extended batch exactly as for any error of its
   * own; its ErrorResponse is replaced here by Winnow's.
   */
  private replaceHookErrors(frames: Buffer[]): Buffer[] {
    return frames.map((f) => {
      if (f[0] !== B.ErrorResponse || this.hookErrors.length === 0) return f;
      const head = this.hookErrors[0];
      if (!f.includes(head.marker)) return f;
      this.hookErrors.shift();
      return head.error;
    });
  }

  private applyBackendHook(h: NonNullable<StatementHandler['onBackendMessage']>, frames: Buffer[]): Buffer[] {
    // Common case: the hook keeps every message, and the frames go out as they came (no new array).
    let out: Buffer[] | null = null;
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i];
      const r = h.call(this.handler, this, f);
      if (r === undefined) {
        out?.push(f);
        continue;
      }
      out ??= frames.slice(0, i);
      if (r === null) continue;
      else if (Array.isArray(r)) out.push(...r);
      else out.push(r);
    }
    return out ?? frames;
  }

  private watchStartup(frames: Buffer[]): void {
    for (const f of frames) {
      switch (f[0]) {
        case B.Authentication: {
          const code = f.readInt32BE(5);
          this.awaitingAuthResponse = AUTH_NEEDS_RESPONSE.has(code);
          break;
        }
        case B.BackendKeyData: {
          const pid = f.readInt32BE(5);
          const secret = Buffer.from(f.subarray(9));
          this.backend!.processId = pid;
          this.backend!.secretKey = secret;
          this.opts.onBackendKey(this, pid, secret);
          break;
        }
        case B.ErrorResponse:
          // Startup failed (bad password, unknown database…): the client gets Postgres's error verbatim.
          this.phase = 'closed';
          break;
        case B.ReadyForQuery:
          this.phase = 'ready';
          this.log.debug({ user: this.params.user, database: this.params.database, backendPid: this.backend!.processId }, 'session ready');
          queueMicrotask(() => this.releaseEarly());
          break;
      }
    }
  }

  private releaseEarly(): void {
    if (this.early.length === 0) return;
    const early = this.early;
    this.early = [];
    this.earlyBytes = 0;
    const rest = this.framer.drain();
    for (const e of early) this.framer.push(e);
    if (rest.length) this.framer.push(rest);
    this.pump();
  }

  // ------------------------------------------------------------ client → backend

  private pump(): void {
    if (this.blocked || this.ended || this.phase === 'connecting') return;
    const out: Buffer[] = [];
    this.pumpOut = out;
    this.inPump = true;
    try {
      this.pumpLoop(out);
    } finally {
      this.pumpOut = null;
      this.inPump = false;
      // A Sync, Flush or Query was processed (or a hook went asynchronous): what is held goes out.
      if (this.flushAfterPump || this.blocked) this.flushClientBatch();
      this.flushAfterPump = false;
    }
  }

  private pumpLoop(out: Buffer[]): void {
    let f: Buffer | null;
    try {
      while ((f = this.framer.next()) !== null) {
        const t = f[0];
        if (!FRONTEND_TYPES.has(t)) throw new ProtocolViolation(`invalid frontend message type ${t}`);
        if (t === F.Sync || t === F.Flush || t === F.Query) this.flushAfterPump = true;
        if (this.phase !== 'ready') {
          if (t === F.PasswordMessage && this.awaitingAuthResponse) {
            // Relayed verbatim (PasswordMessage / SASLInitialResponse / SASLResponse): Postgres authenticates.
            this.awaitingAuthResponse = false;
            out.push(f);
          } else if (t === F.Terminate) {
            this.end();
            return;
          } else if (t === F.PasswordMessage) {
            throw new ProtocolViolation('unexpected password message');
          } else {
            // Pipelined before ReadyForQuery: hold until the session is ready.
            this.earlyBytes += f.length;
            if (this.earlyBytes > MAX_EARLY_BYTES) throw new ProtocolViolation('too much data before authentication completed');
            this.early.push(Buffer.from(f));
          }
          continue;
        }
        if (t === F.Terminate) {
          this.flushToBackend(out);
          this.runDeferredParses();
          this.end();
          return;
        }
        if (this.skippingToSync) {
          // The rest of a batch whose hook failed: Postgres skips it too (it got the failing Bind).
          if (t !== F.Sync) continue;
          this.skippingToSync = false;
          out.push(f);
          this.backend!.expect(t);
          continue;
        }
        this.inHook = true;
        let action;
        try {
          action = this.dispatch(t, f);
        } catch (err) {
          if (!(err instanceof HookError)) throw err;
          action = this.hookFailed(t, err.cause);
        } finally {
          this.inHook = false;
        }
        if (action === undefined) {
          out.push(f);
          this.backend!.expect(t);
        } else if (typeof (action as Promise<FrontendAction>).then === 'function') {
          this.flushToBackend(out);
          out.length = 0;
          if (this.deferredParses.length) this.runDeferredParses();
          this.blocked = true;
          this.client.pause();
          const frame = Buffer.from(f);
          (action as Promise<FrontendAction>).then(
            (a) => {
              if (this.ended) return;
              const o: Buffer[] = [];
              this.apply(t, frame, a, o);
              this.flushToBackend(o);
              this.blocked = false;
              this.client.resume();
              this.pump();
            },
            (err) => {
              if (this.ended) return;
              const o: Buffer[] = [];
              this.apply(t, frame, this.hookFailed(t, err), o);
              this.flushToBackend(o);
              this.blocked = false;
              this.client.resume();
              this.pump();
            },
          );
          return;
        } else {
          this.apply(t, f, action as FrontendAction, out);
        }
      }
    } catch (err) {
      if (err instanceof ProtocolViolation) {
        this.log.info({ reason: err.message }, 'protocol violation; closing connection');
        this.fatal(err.code, err.message);
      } else {
        this.log.warn({ err }, 'malformed message; closing connection');
        this.fatal('08P01', `invalid message: ${(err as Error).message}`);
      }
      return;
    }
    this.flushToBackend(out);
    if (this.deferredParses.length) this.runDeferredParses();
  }

  private apply(t: number, f: Buffer, action: FrontendAction, out: Buffer[]): void {
    if (action === undefined) {
      out.push(f);
      this.backend!.expect(t);
    } else if ('forward' in action) {
      for (const m of action.forward) {
        out.push(m);
        this.backend!.expect(m[0]);
      }
    } else {
      this.backend!.respond(action.respond, action.readyForQuery ?? (t === F.Query || t === F.Sync));
    }
  }

  /**
   * A hook threw or rejected: the client gets an ErrorResponse (XX000) and keeps its connection; what
   * Postgres is sent instead fails in its place (see replaceHookErrors), so a transaction block is
   * aborted and an extended batch skipped up to Sync, as after any error.
   */
  private hookFailed(t: number, err: unknown): FrontendAction {
    this.log.error({ err }, 'statement handler failed');
    if (t === F.Sync) return undefined; // the batch is over: nothing left to skip
    const marker = `winnow-hook-error-${this.id}-${++this.hookErrorSeq}`;
    const error = ErrorResponse({ severity: 'ERROR', code: 'XX000', message: `internal error in Winnow: ${(err as Error)?.message ?? String(err)}` });
    this.hookErrors.push({ marker: Buffer.from(marker), error });
    if (t === F.Query) return { forward: [serialize.query(`SELECT "${marker}"`)] };
    this.skippingToSync = true;
    return { forward: [serialize.bind({ portal: '', statement: marker, values: [] })] };
  }

  /** Hooks for each message type; returns undefined (forward as is) on the fast path. */
  private dispatch(t: number, f: Buffer): MaybePromise<FrontendAction> | undefined {
    const h = this.handler;
    switch (t) {
      case F.Query: {
        const text = decodeQuery(f);
        if (h?.onQuery === undefined) {
          // No hook needs the tree before forwarding: parse after the batch is on its way to Postgres,
          // so the parse overlaps the query's execution instead of adding to its latency.
          this.deferredParses.push(text);
          return undefined;
        }
        return guard(() => h!.onQuery!(this, { text, parsed: parseStatement(text), frame: f })) ?? undefined;
      }
      case F.Parse: {
        const p = decodeParse(f) as PreparedStatement;
        if (h?.onParse === undefined) {
          p.parsed = DEFERRED;
          this.preparedStatements.set(p.name, p);
          this.deferredParses.push(p);
          return undefined;
        }
        p.parsed = parseStatement(p.text);
        this.preparedStatements.set(p.name, p);
        return guard(() => h!.onParse!(this, { ...p, frame: f })) ?? undefined;
      }
      case F.Close: {
        const c = decodeTarget(f);
        if (c.target === 'S') this.preparedStatements.delete(c.name);
        return h?.onClose ? (guard(() => h!.onClose!(this, f)) ?? undefined) : undefined;
      }
      case F.Bind:
        return h?.onBind ? (guard(() => h!.onBind!(this, f)) ?? undefined) : undefined;
      case F.Describe:
        return h?.onDescribe ? (guard(() => h!.onDescribe!(this, f)) ?? undefined) : undefined;
      case F.Execute:
        return h?.onExecute ? (guard(() => h!.onExecute!(this, f)) ?? undefined) : undefined;
      case F.Sync:
        return h?.onSync ? (guard(() => h!.onSync!(this, f)) ?? undefined) : undefined;
      case F.CopyData:
      case F.CopyDone:
      case F.CopyFail:
        return h?.onCopy ? (guard(() => h!.onCopy!(this, f)) ?? undefined) : undefined;
      case F.Flush:
      case F.FunctionCall:
        return undefined;
      default:
        // PasswordMessage after authentication, or anything else out of protocol order.
        throw new ProtocolViolation(`invalid frontend message type ${t}`);
    }
  }

  /** Parses statements whose forwarding did not wait for the parse (see dispatch). */
  private runDeferredParses(): void {
    const d = this.deferredParses;
    for (let i = 0; i < d.length; i++) {
      const x = d[i];
      if (typeof x === 'string') parseStatement(x);
      else x.parsed = parseStatement(x.text);
    }
    d.length = 0;
  }

  private flushToBackend(out: Buffer[]): void {
    if (out.length === 0 || !this.backend || this.backend.closed) return;
    if (!writeFrames(this.backend.socket, out)) this.client.pause(); // resumed on the backend socket's 'drain'
  }

  // ------------------------------------------------------------ shutdown

  /** Answers already produced in this pump go out before whatever ends the session. */
  private flushClientBatch(): void {
    if (this.clientBatch.length === 0 || this.ended) return;
    const b = this.clientBatch;
    this.clientBatch = [];
    this.clientBatchBytes = 0;
    if (!writeFrames(this.client, b)) this.backend?.socket.pause();
  }

  /** Sends a FATAL ErrorResponse (where the protocol allows) and closes both sides. */
  fatal(code: string, message: string): void {
    if (this.ended) return;
    try {
      this.flushClientBatch();
      this.client.write(ErrorResponse({ severity: 'FATAL', code, message }));
    } catch {
      /* socket already gone */
    }
    this.end();
  }

  private clientGone(err?: Error): void {
    if (this.ended) return;
    if (err) this.log.debug({ err: err.message }, 'client connection error');
    const b = this.backend;
    // A query still running would keep the backend busy after we hang up: cancel it first.
    if (b && !b.closed && b.pending > 0 && b.processId) {
      sendCancel(b.target, b.processId, b.secretKey).catch(() => {});
    }
    this.end();
  }

  private backendGone(err?: Error): void {
    if (this.ended) return;
    if (err) this.log.debug({ err: err.message }, 'backend connection error');
    this.end();
  }

  /** Closes both sides exactly once. */
  end(): void {
    if (this.ended) return;
    try {
      this.flushClientBatch();
    } catch {
      /* socket already gone */
    }
    this.ended = true;
    this.phase = 'closed';
    this.backend?.terminate();
    this.client.end();
    // Do not wait forever on a client that stops reading.
    setTimeout(() => this.client.destroy(), 5000).unref();
    try {
      this.handler?.onSessionEnd?.(this);
    } catch (err) {
      this.log.error({ err }, 'onSessionEnd failed');
    }
    this.opts.onEnd(this);
  }

  /** Forcibly closes both sides (server shutdown). */
  destroy(): void {
    this.end();
    this.backend?.destroy();
    this.client.destroy();
  }
}
