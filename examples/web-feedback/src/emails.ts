// The two emails a feedback sends: a thank-you to its author and a notice to the support team.
import type { Feedback } from "./feedback-store.ts";
import type { Email } from "./mailer.ts";

const quote = (text: string): string =>
  text
    .split(/\r?\n/)
    .map((line) => `> ${line}`)
    .join("\n");

export function thankYouEmail(feedback: Feedback): Email {
  return {
    to: feedback.email,
    subject: "Thank you for your feedback",
    text: `Hi ${feedback.name},

thank you for writing to us. We read every message, and when yours needs an answer, someone from
the support team replies within two working days.

You wrote:

${quote(feedback.message)}

The Example team
`,
  };
}

export function supportNotice(feedback: Feedback, supportAddress: string): Email {
  return {
    to: supportAddress,
    subject: `New feedback from ${feedback.name}`,
    replyTo: feedback.email,
    text: `${feedback.name} <${feedback.email}> sent feedback ${feedback.id} at ${feedback.createdAt}:

${quote(feedback.message)}

Reply to this email to answer them.
`,
  };
}
