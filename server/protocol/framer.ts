// Splits a byte stream into protocol messages with strict length validation.
// Typed messages: 1 type byte + int32 length (includes itself) + body.
// Startup-phase messages (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest): int32 length + body.
// Lengths are validated from the header before any buffer of that size is allocated.

/** Like Postgres (PQ_LARGE_MESSAGE_LIMIT is 1 GiB - 1): no frontend message may be larger. */
export const MAX_MESSAGE_SIZE = 0x3fffffff;
/** Postgres caps the startup packet at 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10000;

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
    while (have < upTo && this.chunks.length > 0) {
      const c = this.chunks.shift()!;
      parts.push(c);
      have += c.length;
      this.queued -= c.length;
    }
    this.buf = Buffer.concat(parts, have);
    this.pos = 0;
  }

  /**
   * Returns the next complete frame (a view into the input, including its header), or null if more
   * data is needed. Throws ProtocolViolation on an invalid length before allocating anything.
   */
  next(): Buffer | null {
    const headerLen = this.typed ? 5 : 4;
    if (this.need > 0 && this.available() < this.need) return null;
    if (this.validType !== undefined && this.available() > 0) {
      this.compact(1);
      const t = this.buf![this.pos];
      if (!this.validType(t)) throw new ProtocolViolation(`invalid frontend message type ${t}`);
    }
    if (this.available() < headerLen) return null;
    this.compact(headerLen);
    const b = this.buf!;
    const p = this.pos;
    const len = b.readInt32BE(this.typed ? p + 1 : p);
    const minLen = this.typed ? 4 : 8;
    if (len < minLen || len > this.maxSize) {
      throw new ProtocolViolation(`invalid message length ${len}`);
    }
    const total = this.typed ? len + 1 : len;
    if (this.available() < total) {
      this.need = total;
      return null;
    }
    this.need = 0;
    this.compact(total);
    const frame = this.buf!.subarray(this.pos, this.pos + total);
    this.pos += total;
    if (this.pos >= this.buf!.length && this.queued > 0) {
      // move queued chunks into buf lazily on next call
      this.buf = null;
      this.pos = 0;
      const first = this.chunks.shift()!;
      this.queued -= first.length;
      this.buf = first;
    }
    return frame;
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
