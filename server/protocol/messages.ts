// Message codecs, named after the protocol messages (https://www.postgresql.org/docs/current/protocol-message-formats.html).
// Backend messages that Winnow synthesises are built with pg-protocol's Writer; frontend messages
// that Winnow sends to Postgres itself (startup, cancel, internal queries) use pg-protocol's serializer.
// Frontend messages from clients are decoded here with pg-protocol's BufferReader.
import { Writer } from 'pg-protocol/dist/buffer-writer.js';
import { BufferReader } from 'pg-protocol/dist/buffer-reader.js';

export { Writer, BufferReader };

/** Frontend message type bytes. */
export const F = {
  Bind: 0x42, // B
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Describe: 0x44, // D
  Execute: 0x45, // E
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  Parse: 0x50, // P
  PasswordMessage: 0x70, // p (also SASLInitialResponse, SASLResponse, GSSResponse)
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
} as const;

/** Backend message type bytes. */
export const B = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

/** Special request codes carried in the startup packet's version field. */
export const PROTOCOL_V3 = 196608; // 3.0
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

export const FRONTEND_TYPES = new Set<number>(Object.values(F));
/** Frontend messages Postgres reads with PQ_SMALL_MESSAGE_LIMIT (no payload of their own). */
export const SMALL_FRONTEND_TYPES = new Set<number>([F.Sync, F.Flush, F.Terminate, F.Close, F.Describe, F.Execute, F.CopyDone]);

// ---------------------------------------------------------------- frontend decoders

export type StartupPacket =
  | { kind: 'startup'; version: number; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer };

/** Decodes an untyped startup-phase packet (length already validated by the framer). */
export function decodeStartupPacket(frame: Buffer): StartupPacket {
  const code = frame.readInt32BE(4);
  if (code === SSL_REQUEST_CODE && frame.length === 8) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST_CODE && frame.length === 8) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST_CODE && frame.length >= 12) {
    return { kind: 'cancel', processId: frame.readInt32BE(8), secretKey: Buffer.from(frame.subarray(12)) };
  }
  if (code >>> 16 !== 3) throw new Error(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0 to 3.0`);
  const params: Record<string, string> = {};
  let p = 8;
  for (;;) {
    const keyEnd = frame.indexOf(0, p);
    if (keyEnd < 0) throw new Error('invalid startup packet layout: expected terminator as last byte');
    if (keyEnd === p) break; // terminating empty name
    const key = frame.toString('utf8', p, keyEnd);
    const valEnd = frame.indexOf(0, keyEnd + 1);
    if (valEnd < 0) throw new Error('invalid startup packet layout: expected terminator as last byte');
    params[key] = frame.toString('utf8', keyEnd + 1, valEnd);
    p = valEnd + 1;
  }
  if (p !== frame.length - 1) throw new Error('invalid startup packet layout: expected terminator as last byte');
  return { kind: 'startup', version: code, params };
}

function cstringAt(frame: Buffer, p: number): [string, number] {
  const end = frame.indexOf(0, p);
  if (end < 0 || end >= frame.length) throw new Error('invalid string in message');
  return [frame.toString('utf8', p, end), end + 1];
}

/** Query: the statement text. */
export function decodeQuery(frame: Buffer): string {
  return cstringAt(frame, 5)[0];
}

export interface ParseMessage {
  name: string;
  text: string;
  paramTypes: number[];
}

export function decodeParse(frame: Buffer): ParseMessage {
  const [name, p1] = cstringAt(frame, 5);
  const [text, p2] = cstringAt(frame, p1);
  if (p2 + 2 > frame.length) throw new Error('invalid Parse message');
  const n = frame.readInt16BE(p2);
  if (n < 0 || p2 + 2 + 4 * n > frame.length) throw new Error('invalid Parse message');
  const paramTypes: number[] = new Array(n);
  for (let i = 0; i < n; i++) paramTypes[i] = frame.readUInt32BE(p2 + 2 + 4 * i);
  return { name, text, paramTypes };
}

export interface BindMessage {
  portal: string;
  statement: string;
  paramFormats: number[];
  /** null = SQL NULL. Views into the frame. */
  params: (Buffer | null)[];
  resultFormats: number[];
}

export function decodeBind(frame: Buffer): BindMessage {
  const [portal, p1] = cstringAt(frame, 5);
  const [statement, p2] = cstringAt(frame, p1);
  const r = new BufferReader();
  r.setBuffer(p2, frame);
  const nf = r.int16();
  const paramFormats: number[] = [];
  for (let i = 0; i < nf; i++) paramFormats.push(r.int16());
  const np = r.int16();
  const params: (Buffer | null)[] = [];
  for (let i = 0; i < np; i++) {
    const len = r.int32();
    params.push(len < 0 ? null : r.bytes(len));
  }
  const nr = r.int16();
  const resultFormats: number[] = [];
  for (let i = 0; i < nr; i++) resultFormats.push(r.int16());
  return { portal, statement, paramFormats, params, resultFormats };
}

/** Bind, for frontend messages Winnow rewrites (the inverse of decodeBind). */
/**
 * The format code of value i under a Bind's list of format codes (parameters or results): none means
 * text for all, one applies to all, otherwise one per value.
 */
export function formatCode(codes: readonly number[], i: number): 0 | 1 {
  return (codes.length === 0 ? 0 : codes.length === 1 ? codes[0] : (codes[i] ?? 0)) as 0 | 1;
}

export function Bind(m: BindMessage): Buffer {
  const w = new Writer().addCString(m.portal).addCString(m.statement).addInt16(m.paramFormats.length);
  for (const f of m.paramFormats) w.addInt16(f);
  w.addInt16(m.params.length);
  for (const p of m.params) {
    if (p === null) w.addInt32(-1);
    else w.addInt32(p.length).add(p);
  }
  w.addInt16(m.resultFormats.length);
  for (const f of m.resultFormats) w.addInt16(f);
  return w.flush(0x42);
}

/** Describe / Close: 'S' (statement) or 'P' (portal) + name. */
export function decodeTarget(frame: Buffer): { target: 'S' | 'P'; name: string } {
  const t = String.fromCharCode(frame[5]);
  if (t !== 'S' && t !== 'P') throw new Error(`invalid target type ${t}`);
  return { target: t, name: cstringAt(frame, 6)[0] };
}

export function decodeExecute(frame: Buffer): { portal: string; maxRows: number } {
  const [portal, p] = cstringAt(frame, 5);
  return { portal, maxRows: frame.readInt32BE(p) };
}

// ---------------------------------------------------------------- backend encoders

export type ErrorFields = Partial<Record<ErrorFieldName, string>>;
export type ErrorFieldName =
  | 'severity' | 'severityNonLocalized' | 'code' | 'message' | 'detail' | 'hint' | 'position'
  | 'internalPosition' | 'internalQuery' | 'where' | 'schema' | 'table' | 'column' | 'dataType'
  | 'constraint' | 'file' | 'line' | 'routine';

const FIELD_CODES: Record<ErrorFieldName, string> = {
  severity: 'S', severityNonLocalized: 'V', code: 'C', message: 'M', detail: 'D', hint: 'H',
  position: 'P', internalPosition: 'p', internalQuery: 'q', where: 'W', schema: 's', table: 't',
  column: 'c', dataType: 'd', constraint: 'n', file: 'F', line: 'L', routine: 'R',
};
const FIELD_NAMES: Record<string, ErrorFieldName> = Object.fromEntries(
  Object.entries(FIELD_CODES).map(([k, v]) => [v, k as ErrorFieldName]),
);

function fields(code: number, f: ErrorFields): Buffer {
  const w = new Writer();
  for (const [name, value] of Object.entries(f)) {
    if (value === undefined) continue;
    w.addString(FIELD_CODES[name as ErrorFieldName]).addCString(value);
  }
  w.addString('\0');
  return w.flush(code);
}

export function ErrorResponse(f: ErrorFields): Buffer {
  return fields(B.ErrorResponse, { severityNonLocalized: f.severity, ...f });
}

export function NoticeResponse(f: ErrorFields): Buffer {
  return fields(B.NoticeResponse, { severityNonLocalized: f.severity, ...f });
}

/** Decodes ErrorResponse/NoticeResponse fields (every field Postgres sent, by name). */
export function decodeErrorFields(frame: Buffer): ErrorFields & Record<string, string> {
  const out: Record<string, string> = {};
  let p = 5;
  while (p < frame.length && frame[p] !== 0) {
    const code = String.fromCharCode(frame[p]);
    const end = frame.indexOf(0, p + 1);
    if (end < 0) break;
    out[FIELD_NAMES[code] ?? code] = frame.toString('utf8', p + 1, end);
    p = end + 1;
  }
  return out;
}

export type TransactionStatus = 'I' | 'T' | 'E';

export function ReadyForQuery(status: TransactionStatus): Buffer {
  return Buffer.from([B.ReadyForQuery, 0, 0, 0, 5, status.charCodeAt(0)]);
}

export function AuthenticationOk(): Buffer {
  return Buffer.from([B.Authentication, 0, 0, 0, 8, 0, 0, 0, 0]);
}

export function ParameterStatus(name: string, value: string): Buffer {
  return new Writer().addCString(name).addCString(value).flush(B.ParameterStatus);
}

export function BackendKeyData(processId: number, secretKey: Buffer): Buffer {
  return new Writer().addInt32(processId).add(secretKey).flush(B.BackendKeyData);
}

export interface FieldDescription {
  name: string;
  tableOid?: number;
  columnAttr?: number;
  typeOid: number;
  typeSize?: number;
  typeModifier?: number;
  format?: 0 | 1;
}

export function RowDescription(fieldsList: FieldDescription[]): Buffer {
  const w = new Writer().addInt16(fieldsList.length);
  for (const f of fieldsList) {
    w.addCString(f.name)
      .addInt32(f.tableOid ?? 0)
      .addInt16(f.columnAttr ?? 0)
      .addInt32(f.typeOid)
      .addInt16(f.typeSize ?? -1)
      .addInt32(f.typeModifier ?? -1)
      .addInt16(f.format ?? 0);
  }
  return w.flush(B.RowDescription);
}

/** DataRow: values as text (string), raw bytes (Buffer) or SQL NULL (null). */
export function DataRow(values: (string | Buffer | null)[]): Buffer {
  const w = new Writer().addInt16(values.length);
  for (const v of values) {
    if (v === null) w.addInt32(-1);
    else {
      const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
      w.addInt32(b.length).add(b);
    }
  }
  return w.flush(B.DataRow);
}

export function CommandComplete(tag: string): Buffer {
  return new Writer().addCString(tag).flush(B.CommandComplete);
}

export function EmptyQueryResponse(): Buffer {
  return Buffer.from([B.EmptyQueryResponse, 0, 0, 0, 4]);
}

export function ParseComplete(): Buffer {
  return Buffer.from([B.ParseComplete, 0, 0, 0, 4]);
}

export function BindComplete(): Buffer {
  return Buffer.from([B.BindComplete, 0, 0, 0, 4]);
}

export function CloseComplete(): Buffer {
  return new Writer().flush(B.CloseComplete);
}

export function PortalSuspended(): Buffer {
  return new Writer().flush(B.PortalSuspended);
}

export function ParameterDescription(typeOids: readonly number[]): Buffer {
  const w = new Writer().addInt16(typeOids.length);
  for (const t of typeOids) w.addInt32(t | 0);
  return w.flush(B.ParameterDescription);
}

export function NoData(): Buffer {
  return Buffer.from([B.NoData, 0, 0, 0, 4]);
}

// ---------------------------------------------------------------- backend decoders (for hooks/internal queries)

export function decodeRowDescription(frame: Buffer): FieldDescription[] {
  const r = new BufferReader();
  r.setBuffer(5, frame);
  const n = r.int16();
  const out: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    out.push({
      name,
      tableOid: r.uint32(),
      columnAttr: r.int16(),
      typeOid: r.uint32(),
      typeSize: r.int16(),
      typeModifier: r.int32(),
      format: r.int16() as 0 | 1,
    });
  }
  return out;
}

export function decodeDataRow(frame: Buffer): (Buffer | null)[] {
  const r = new BufferReader();
  r.setBuffer(5, frame);
  const n = r.int16();
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    out.push(len < 0 ? null : r.bytes(len));
  }
  return out;
}

export function decodeCommandComplete(frame: Buffer): string {
  return cstringAt(frame, 5)[0];
}
