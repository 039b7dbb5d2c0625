// Sends one email over SMTP with nodemailer, and sorts its failures into "try again later" and
// "give up": the email task retries the first kind only.
import nodemailer, { type NodemailerError } from "nodemailer";

export interface Email {
  to: string;
  subject: string;
  text: string;
  replyTo?: string;
}

export interface SmtpSettings {
  host: string;
  port: number;
  from: string;
}

/** The mail server said "not now" (a 4xx reply), or could not be reached: worth another try. */
export class MailServerBusyError extends Error {
  override name = "MailServerBusyError";
}

/** The mail server refused the message for good (a 5xx reply): the same message would fail again. */
export class MailRejectedError extends Error {
  override name = "MailRejectedError";
}

/** The worker's SMTP settings: SMTP_HOST, SMTP_PORT and MAIL_FROM (main.ts sets them). */
export function smtpSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): SmtpSettings {
  return {
    host: env.SMTP_HOST || "127.0.0.1",
    port: Number(env.SMTP_PORT || 2525),
    from: env.MAIL_FROM || "Example Feedback <feedback@example.com>",
  };
}

const CONNECTION_FAILURES = new Set(["ECONNECTION", "ESOCKET", "ETIMEDOUT", "EDNS"]);

function classify(error: unknown): unknown {
  const failure = error as NodemailerError;
  if (!(error instanceof Error)) return error;
  if (failure.responseCode !== undefined) {
    const Kind = failure.permanent ? MailRejectedError : MailServerBusyError;
    const reply = failure.response ?? `${failure.responseCode} ${failure.message}`;
    return new Kind(`the mail server refused the message: ${reply}`, { cause: error });
  }
  if (failure.code !== undefined && CONNECTION_FAILURES.has(failure.code)) {
    return new MailServerBusyError(`mail server unreachable: ${failure.message}`, { cause: error });
  }
  return error;
}

/** Sends the email; throws MailServerBusyError or MailRejectedError when the server refuses it. */
export async function deliver(
  email: Email,
  settings: SmtpSettings,
  headers: Record<string, string> = {},
): Promise<{ messageId: string; response: string }> {
  const transport = nodemailer.createTransport({
    host: settings.host,
    port: settings.port,
    secure: false,
    ignoreTLS: true, // the local server speaks plain SMTP on loopback
    connectionTimeout: 5_000,
    greetingTimeout: 5_000,
    socketTimeout: 15_000,
  });
  try {
    const info = await transport.sendMail({
      from: settings.from,
      to: email.to,
      subject: email.subject,
      text: email.text,
      ...(email.replyTo !== undefined && { replyTo: email.replyTo }),
      headers,
    });
    return { messageId: info.messageId, response: info.response };
  } catch (error) {
    throw classify(error);
  } finally {
    transport.close();
  }
}
