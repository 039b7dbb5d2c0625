// The tasks of the web-feedback app. The worker runs them (`celery-ts worker --app src/tasks.ts`);
// the web server imports this module for the task's name and types, and never runs it.
import { currentTask, defineTask, type RetryPolicy } from "@celery-ts/core";
import { MailServerBusyError, deliver, smtpSettingsFromEnv, type Email } from "./mailer.ts";

/**
 * When the mail server says "not now": up to 5 retries, the first within 1 s, each delay doubling
 * up to 30 s, and each one a random fraction of that ("full jitter"), so that a server that comes
 * back is not hit by every waiting email at the same moment.
 */
export const EMAIL_RETRY_POLICY: Readonly<Required<RetryPolicy>> = Object.freeze({
  maxRetries: 5,
  delay: 1,
  backoff: "exponential",
  maxDelay: 30,
  jitter: true,
});

/** Sends one email. Retried on MailServerBusyError; a MailRejectedError fails it at once. */
export const sendEmail = defineTask(
  "feedback.send_email",
  async (email: Email) => {
    const { id, retries } = currentTask();
    const attempt = retries + 1;
    const { messageId } = await deliver(email, smtpSettingsFromEnv(), {
      "X-Task-Id": id,
      "X-Delivery-Attempt": String(attempt),
    });
    return { to: email.to, messageId, attempts: attempt };
  },
  { autoRetryFor: [MailServerBusyError], retry: EMAIL_RETRY_POLICY },
);
