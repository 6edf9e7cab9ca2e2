// TCP and Unix-domain socket accept, SSL/GSSENC negotiation, StartupMessage, CancelRequest routing.
import { existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { Framer, MAX_STARTUP_PACKET } from './protocol/framer.ts';
import { ErrorResponse, decodeStartupPacket } from './protocol/messages.ts';
import { Session, type StatementHandlerFactory } from './session.ts';
import { sendCancel, type BackendTarget } from './backend.ts';

export interface ListenerOptions {
  host: string;
  port: number;
  /**
   * Also accept connections on the Unix-domain socket `<dir>/.s.PGSQL.<port>`, where libpq clients
   * look for it (`psql -h <dir> -p <port>`). Its clients are local, like loopback ones.
   */
  unixSocketDir?: string;
  log: Logger;
  /** Which Postgres a client session connects to (may depend on the client's address). */
  targetFor(remoteAddress: string | undefined): BackendTarget;
  tls?: tls.SecureContextOptions;
  handlerFactory?: StatementHandlerFactory;
  /** A client must complete the startup packet within this time. */
  startupTimeoutMs?: number;
  maxMessageSize?: number;
}

/** The remote address given to targetFor for a Unix-domain socket client. */
export const LOCAL_SOCKET = 'local';

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  if (addr === LOCAL_SOCKET) return true;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

export class Listener {
  readonly server: net.Server;
  private unixServer: net.Server | null = null;
  /** The Unix-domain socket's path once listening on it. */
  socketPath: string | null = null;
  readonly sessions = new Set<Session>();
  private readonly cancelKeys = new Map<string, Session>();
  private readonly pendingSockets = new Set<net.Socket>();
  private secureContext: tls.SecureContext | undefined;
  private nextId = 1;

  constructor(private readonly opts: ListenerOptions) {
    if (opts.tls) this.secureContext = tls.createSecureContext(opts.tls);
    this.server = net.createServer((sock) => this.accept(sock, sock.remoteAddress));
    this.server.on('error', (err) => opts.log.error({ err }, 'listener error'));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.removeListener('error', reject);
        const a = this.server.address() as net.AddressInfo;
        if (!this.opts.unixSocketDir) return resolve({ host: a.address, port: a.port });
        this.listenUnix(path.join(this.opts.unixSocketDir, `.s.PGSQL.${a.port}`)).then(() => resolve({ host: a.address, port: a.port }), (err) => {
          this.server.close();
          reject(err);
        });
      });
    });
  }

  private async listenUnix(file: string): Promise<void> {
    // A socket file left by a process that died: nobody answers on it, so it can go (as Postgres
    // decides with its lock file). One that answers belongs to a running server.
    if (existsSync(file)) {
      const alive = await new Promise<boolean>((r) => {
        const probe = net.connect(file, () => { probe.destroy(); r(true); });
        probe.on('error', () => r(false));
      });
      if (alive) throw new Error(`another server is listening on ${file}`);
      unlinkSync(file);
    }
    const server = net.createServer((sock) => this.accept(sock, LOCAL_SOCKET));
    server.on('error', (err) => this.opts.log.error({ err }, 'listener error (Unix socket)'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    this.unixServer = server;
    this.socketPath = file;
  }

  private accept(sock: net.Socket, remote: string | undefined): void {
    if (remote !== LOCAL_SOCKET) sock.setNoDelay(true);
    this.pendingSockets.add(sock);
    sock.once('close', () => this.pendingSockets.delete(sock));
    const log = this.opts.log.child({ remote: remote === LOCAL_SOCKET ? LOCAL_SOCKET : `${remote}:${sock.remotePort}` });
    const timer = setTimeout(() => {
      log.info('startup timeout');
      sock.destroy();
    }, this.opts.startupTimeoutMs ?? 60_000);
    timer.unref();
    this.negotiate(sock, remote, log, timer, false);
  }

  /** Reads startup-phase packets on `sock` (plain or TLS) until a StartupMessage or CancelRequest. */
  private negotiate(sock: net.Socket, remote: string | undefined, log: Logger, timer: NodeJS.Timeout, encrypted: boolean): void {
    const framer = new Framer(false, MAX_STARTUP_PACKET);
    // Like Postgres: each of SSLRequest and GSSENCRequest may be tried once, in either order.
    let sslDone = encrypted;
    let gssDone = encrypted;
    const fail = (message: string, code = '08P01') => {
      log.info({ reason: message }, 'rejecting connection');
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.end(ErrorResponse({ severity: 'FATAL', code, message }));
      setTimeout(() => sock.destroy(), 2000).unref();
    };
    const onData = (chunk: Buffer) => {
      framer.push(chunk);
      for (;;) {
        let frame: Buffer | null;
        let pkt;
        try {
          frame = framer.next();
          if (frame === null) return;
          pkt = decodeStartupPacket(frame);
        } catch (err) {
          fail((err as Error).message);
          return;
        }
        switch (pkt.kind) {
          case 'ssl': {
            if (sslDone) return fail('unexpected SSLRequest after encryption negotiation');
            sslDone = true;
            if (!this.secureContext) {
              sock.write('N');
              continue;
            }
            // Bytes after SSLRequest and before the handshake would be unencrypted injection (CVE-2021-23214).
            if (framer.buffered > 0) return fail('received unencrypted data after SSL request');
            sock.removeListener('data', onData);
            sock.write('S');
            const tsock = new tls.TLSSocket(sock, { isServer: true, secureContext: this.secureContext });
            tsock.on('error', (err) => {
              log.info({ err: err.message }, 'TLS error');
              sock.destroy();
            });
            this.negotiate(tsock, remote, log, timer, true);
            return;
          }
          case 'gssenc':
            if (gssDone) return fail('unexpected GSSENCRequest after encryption negotiation');
            gssDone = true;
            sock.write('N');
            continue;
          case 'cancel': {
            clearTimeout(timer);
            sock.removeListener('data', onData);
            this.cancel(pkt.processId, pkt.secretKey, log);
            sock.end();
            return;
          }
          case 'startup': {
            clearTimeout(timer);
            sock.removeListener('data', onData);
            if (!pkt.params.user) return fail('no PostgreSQL user name specified in startup packet', '28000');
            this.startSession(sock, pkt.params, remote, log, framer.drain());
            return;
          }
        }
      }
    };
    sock.on('data', onData);
    sock.on('error', () => sock.destroy());
  }

  private startSession(sock: net.Socket, params: Record<string, string>, remote: string | undefined, log: Logger, rest: Buffer): void {
    const id = this.nextId++;
    const slog = log.child({ session: id });
    const session = new Session(sock, {
      id,
      params,
      target: this.opts.targetFor(remote),
      log: slog,
      handlerFactory: this.opts.handlerFactory,
      maxMessageSize: this.opts.maxMessageSize,
      onBackendKey: (s, pid, secret) => {
        this.cancelKeys.set(cancelKey(pid, secret), s);
      },
      onEnd: (s) => {
        this.sessions.delete(s);
        const pid = s.backendProcessId;
        for (const [k, v] of this.cancelKeys) if (v === s && k.startsWith(`${pid}:`)) this.cancelKeys.delete(k);
        slog.debug('session ended');
      },
    }, rest);
    this.pendingSockets.delete(sock);
    this.sessions.add(session);
    session.start().catch((err) => {
      slog.error({ err }, 'session failed to start');
      session.fatal('XX000', `internal error in Winnow: ${(err as Error).message}`);
    });
  }

  /** Forwards a CancelRequest to the backend of the session that owns the key (BackendKeyData is relayed unchanged). */
  private cancel(processId: number, secretKey: Buffer, log: Logger): void {
    const s = this.cancelKeys.get(cancelKey(processId, secretKey));
    if (!s) {
      log.info({ processId }, 'cancel request for unknown key ignored');
      return;
    }
    log.debug({ processId }, 'forwarding cancel request');
    sendCancel(s.target, processId, secretKey).catch((err) =>
      log.warn({ err }, 'cancel forwarding failed'),
    );
  }

  /** Stops accepting, closes every session (client and backend). */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    const unixClosed = new Promise<void>((r) => (this.unixServer ? this.unixServer.close(() => r()) : r()));
    for (const s of this.sessions) s.destroy();
    for (const s of this.pendingSockets) s.destroy();
    await closed;
    await unixClosed; // net.Server removes its socket file on close
  }
}

function cancelKey(pid: number, secret: Buffer): string {
  return `${pid}:${secret.toString('hex')}`;
}
