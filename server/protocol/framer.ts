// Splits a byte stream into protocol messages with strict length validation.
// Typed messages: 1 type byte + int32 length (includes itself) + body.
// Startup-phase messages (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest): int32 length + body.
// Lengths are validated from the header before any buffer of that size is allocated.

/** Like Postgres (PQ_LARGE_MESSAGE_LIMIT is 1 GiB - 1): no frontend message may be larger. */
export const MAX_MESSAGE_SIZE = 0x3fffffff;
/** Postgres caps the startup packet at 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10000;

/** PQ_SMALL_MESSAGE_LIMIT: messages that never carry data (Sync, Flush, Execute, Describe, Close…). */
export const SMALL_MESSAGE_LIMIT = 10000;

export class ProtocolViolation extends Error {
  constructor(message: string, readonly code = '08P01') {
    super(message);
  }
}

/**
 * Accumulates chunks; `next()` yields complete frames. Partial data is kept as a chunk list
 * and concatenated once when the frame is complete (no quadratic copying for large messages).
 */
export class Framer {
  private buf: Buffer | null = null; // contiguous head
  private pos = 0;
  private chunks: Buffer[] = []; // data after buf while waiting for a large frame
  private queued = 0; // bytes in chunks
  private need = 0; // total bytes needed (from pos) before next() can yield, 0 = unknown

  constructor(
    private readonly typed: boolean,
    private readonly maxSize: number,
    /** Typed framers: reject an unknown type byte as soon as it arrives (Postgres checks it before the length). */
    private readonly validType?: (type: number) => boolean,
    /** Typed framers: a lower limit for some types (Postgres caps Sync, Execute… at 5000 bytes). */
    private readonly smallTypes?: ReadonlySet<number>,
  ) {}

  push(chunk: Buffer): void {
    if (this.buf === null || this.pos >= this.buf.length) {
      if (this.queued === 0) {
        this.buf = chunk;
        this.pos = 0;
        return;
      }
    }
    this.chunks.push(chunk);
    this.queued += chunk.length;
  }

  /** Bytes held but not yet returned. */
  get buffered(): number {
    return (this.buf ? this.buf.length - this.pos : 0) + this.queued;
  }

  private available(): number {
    return (this.buf ? this.buf.length - this.pos : 0) + this.queued;
  }

  private compact(upTo: number): void {
    // Make at least `upTo` bytes contiguous at this.buf[this.pos..].
    const head = this.buf ? this.buf.subarray(this.pos) : Buffer.alloc(0);
    if (head.length >= upTo || this.queued === 0) return;
    const parts = [head];
    let have = head.length;
    let i = 0;
    while (have < upTo && i < this.chunks.length) {
      const c = this.chunks[i++];
      parts.push(c);
      have += c.length;
      this.queued -= c.length;
    }
    this.chunks = i === this.chunks.length ? [] : this.chunks.slice(i);
    this.buf = Buffer.concat(parts, have);
    this.pos = 0;
  }

  /**
   * Makes the next frame contiguous at buf[pos..] and returns its total size, or -1 if it has not fully
   * arrived. Throws ProtocolViolation on an invalid type or length before allocating anything.
   */
  private ensureFrame(): number {
    const headerLen = this.typed ? 5 : 4;
    if (this.need > 0 && this.available() < this.need) return -1;
    if (this.validType !== undefined && this.available() > 0) {
      this.compact(1);
      const t = this.buf![this.pos];
      if (!this.validType(t)) throw new ProtocolViolation(`invalid frontend message type ${t}`);
    }
    if (this.available() < headerLen) return -1;
    this.compact(headerLen);
    const b = this.buf!;
    const p = this.pos;
    const len = b.readInt32BE(this.typed ? p + 1 : p);
    const minLen = this.typed ? 4 : 8;
    if (len < minLen || len > this.maxSize || (this.smallTypes !== undefined && len > SMALL_MESSAGE_LIMIT && this.smallTypes.has(b[p]))) {
      throw new ProtocolViolation(`invalid message length ${len}`);
    }
    const total = this.typed ? len + 1 : len;
    if (this.available() < total) {
      this.need = total;
      return -1;
    }
    this.need = 0;
    this.compact(total);
    return total;
  }

  /** Returns the next complete frame (a view into the input, including its header), or null if more data is needed. */
  next(): Buffer | null {
    const total = this.ensureFrame();
    if (total < 0) return null;
    const frame = this.buf!.subarray(this.pos, this.pos + total);
    this.consume(total);
    return frame;
  }

  /**
   * Like next(), but without advancing: the contiguous buffered bytes starting at the next frame, which
   * is complete (more complete frames and a partial one may follow), or null. Lets a caller scan many
   * messages in place without a view per message; advance with consume().
   */
  peekRun(): Buffer | null {
    const total = this.ensureFrame();
    if (total < 0) return null;
    return this.buf!.subarray(this.pos);
  }

  /** Advances past n bytes (at most what peekRun() returned). */
  consume(n: number): void {
    this.pos += n;
    if (this.pos >= this.buf!.length && this.queued > 0) {
      const first = this.chunks.shift()!;
      this.queued -= first.length;
      this.buf = first;
      this.pos = 0;
    }
  }

  /** The type byte of the next frame if its header has arrived (for scanning), else -1. */
  peekType(): number {
    if (this.available() < 1) return -1;
    this.compact(1);
    return this.buf![this.pos];
  }

  /** Remaining undelivered bytes (used when switching framers, e.g. after the startup packet). */
  drain(): Buffer {
    const head = this.buf ? this.buf.subarray(this.pos) : Buffer.alloc(0);
    const out = this.queued ? Buffer.concat([head, ...this.chunks]) : head;
    this.buf = null;
    this.pos = 0;
    this.chunks = [];
    this.queued = 0;
    this.need = 0;
    return out;
  }
}
