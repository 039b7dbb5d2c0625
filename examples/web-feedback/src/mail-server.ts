// A real SMTP server on loopback (smtp-server from npm) standing in for your mail provider. It
// keeps what it receives in memory (and, if asked, as .eml files), and can refuse the first
// deliveries with "451 try again later", as a busy or greylisting server does.
import { mkdirSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { SMTPServer, type SMTPServerError } from "smtp-server";
import { parseMessage, type ParsedMessage } from "./mime.ts";

export interface ReceivedMail extends ParsedMessage {
  /** 1, 2, ... in the order mail arrived. */
  seq: number;
  /** The envelope: MAIL FROM and RCPT TO. */
  from: string;
  to: string[];
  raw: string;
  /** Date.now() when the message was accepted. */
  receivedAt: number;
}

export interface RefusedDelivery {
  from: string;
  to: string;
  code: number;
  at: number;
}

export interface MailServerOptions {
  /** @default "127.0.0.1" */
  host?: string;
  /** @default 0: any free port */
  port?: number;
  /** Refuse this many deliveries (recipients) with a temporary error before accepting. @default 0 */
  refuseFirst?: number;
  /** The reply code of a refusal: 4xx is "try again later", 5xx is "never". @default 451 */
  refuseCode?: number;
  /** Also write each message as <seq>-<time>.eml into this directory. */
  mailboxDir?: string;
  /** Where to report deliveries and refusals (one line each). @default silent */
  log?: (line: string) => void;
}

export interface MailServer {
  readonly host: string;
  readonly port: number;
  readonly received: readonly ReceivedMail[];
  readonly refused: readonly RefusedDelivery[];
  /** Refuse the next `count` deliveries (replacing what is left of any earlier count). */
  refuseNext(count: number, code?: number): void;
  /** Resolves once `count` messages in all have arrived. */
  waitForMail(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

export async function startMailServer(options: MailServerOptions = {}): Promise<MailServer> {
  const host = options.host ?? "127.0.0.1";
  const log = options.log ?? (() => {});
  const received: ReceivedMail[] = [];
  const refused: RefusedDelivery[] = [];
  let refuseLeft = options.refuseFirst ?? 0;
  let refuseCode = options.refuseCode ?? 451;
  const waiters = new Set<() => void>();
  if (options.mailboxDir) mkdirSync(options.mailboxDir, { recursive: true });

  const server = new SMTPServer({
    logger: false,
    disabledCommands: ["STARTTLS", "AUTH"], // plain SMTP on loopback, no login
    closeTimeout: 2_000,
    size: 10 * 1024 * 1024,
    onRcptTo(address, session, callback) {
      if (refuseLeft <= 0) return callback();
      refuseLeft--;
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : "";
      refused.push({ from, to: address.address, code: refuseCode, at: Date.now() });
      const temporary = refuseCode < 500;
      log(`mail server: refused mail to ${address.address} with ${refuseCode}`);
      const error: SMTPServerError = new Error(
        temporary ? "4.3.2 Server busy, try again later" : "5.7.1 Delivery not authorized",
      );
      error.responseCode = refuseCode;
      callback(error);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", callback);
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const mail: ReceivedMail = {
          ...parseMessage(raw),
          seq: received.length + 1,
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          raw,
          receivedAt: Date.now(),
        };
        received.push(mail);
        if (options.mailboxDir) {
          const name = `${String(mail.seq).padStart(4, "0")}-${mail.receivedAt}.eml`;
          writeFileSync(join(options.mailboxDir, name), raw);
        }
        log(`mail server: accepted mail to ${mail.to.join(", ")}: "${mail.subject}"`);
        waiters.forEach((wake) => wake());
        callback(null, "Message accepted");
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.server.address() as AddressInfo;

  return {
    host,
    port,
    received,
    refused,
    refuseNext(count, code = 451) {
      refuseLeft = count;
      refuseCode = code;
    },
    waitForMail(count, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (received.length < count) return;
          cleanup();
          resolve(received.slice());
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${received.length} of ${count} mails arrived within ${timeoutMs} ms`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
