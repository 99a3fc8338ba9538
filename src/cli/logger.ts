import { join } from 'node:path';
import type { Logger } from 'winston';

/** Console and file logging for one command. */
export interface RunLogger {
  readonly logger: Logger;
  /** The JSON-lines log file of this run, if any. */
  readonly file?: string;
  close(): Promise<void>;
}

/**
 * Creates the winston logger of a command: readable lines on stderr (unless
 * quiet or in --json mode, where stdout carries events) and, for a run, a
 * JSON-lines file in the store's logs folder. Winston loads only here, so
 * `validate` never pays for it.
 */
export async function createLogger(options: { console: boolean; verbose: boolean; logDir?: string; runId?: string }): Promise<RunLogger> {
  const { default: winston } = await import('winston');
  const transports: InstanceType<typeof winston.transports.Console | typeof winston.transports.File>[] = [];
  if (options.console) {
    transports.push(new winston.transports.Console({
      level: options.verbose ? 'debug' : 'info',
      stderrLevels: ['error', 'warn', 'info', 'debug'],
      format: winston.format.printf(({ level, message }) => (level === 'info' ? String(message) : `${level}: ${String(message)}`)),
    }));
  }
  const file = options.logDir !== undefined && options.runId !== undefined ? join(options.logDir, `${options.runId}.jsonl`) : undefined;
  if (file !== undefined) {
    transports.push(new winston.transports.File({
      filename: file,
      level: 'debug',
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    }));
  }
  const logger = winston.createLogger({ transports, silent: transports.length === 0 });
  return {
    logger,
    ...(file !== undefined ? { file } : {}),
    close: () => new Promise<void>((resolve) => {
      if (file === undefined) {
        resolve();
        return;
      }
      logger.on('finish', () => resolve());
      logger.end();
    }),
  };
}
