// Structured logs (pino, JSON lines on stderr so stdout stays for the psql line).
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info'): Logger {
  return pino({ level, base: { service: 'winnow' } }, pino.destination({ fd: 2, sync: false }));
}
