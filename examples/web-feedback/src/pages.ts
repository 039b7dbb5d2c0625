// The app's HTML pages: plain server-rendered HTML, no client-side code.
import type { Feedback, FeedbackInput } from "./feedback-store.ts";

export const escapeHtml = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  main { max-width: 36rem; margin: 3rem auto; padding: 2rem 2.5rem; background: #fff;
         border-radius: 12px; box-shadow: 0 1px 4px rgb(0 0 0 / 0.08); }
  h1 { margin-top: 0; font-size: 1.6rem; }
  label { display: block; margin: 1rem 0 0.3rem; font-weight: 600; }
  input, textarea { width: 100%; box-sizing: border-box; padding: 0.55rem 0.7rem; font: inherit;
                    border: 1px solid #c5cad3; border-radius: 6px; }
  textarea { min-height: 8rem; resize: vertical; }
  button { margin-top: 1.5rem; padding: 0.6rem 1.4rem; font: inherit; font-weight: 600;
           color: #fff; background: #2f6fdf; border: 0; border-radius: 6px; cursor: pointer; }
  .errors { padding: 0.6rem 1rem; color: #8a1c1c; background: #fdecec; border-radius: 6px; }
  .note { color: #5b6472; font-size: 0.9rem; }
  blockquote { margin: 1rem 0; padding: 0.5rem 1rem; border-left: 4px solid #c5cad3;
               color: #3b4352; white-space: pre-wrap; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export function feedbackFormPage(
  values: Partial<FeedbackInput> = {},
  errors: readonly string[] = [],
): string {
  const value = (field: keyof FeedbackInput): string => escapeHtml(values[field] ?? "");
  const errorList =
    errors.length === 0
      ? ""
      : `<div class="errors" role="alert"><ul>${errors.map((e) => `<li>${escapeHtml(e)}</li>`).join("")}</ul></div>`;
  return layout(
    "Send us feedback",
    `<h1>Send us feedback</h1>
<p>Tell us what works and what does not. We answer every message.</p>
${errorList}
<form method="post" action="/feedback">
  <label for="name">Your name</label>
  <input id="name" name="name" maxlength="100" required value="${value("name")}">
  <label for="email">Your email</label>
  <input id="email" name="email" type="email" maxlength="200" required value="${value("email")}">
  <label for="message">Your feedback</label>
  <textarea id="message" name="message" maxlength="5000" required>${value("message")}</textarea>
  <button type="submit">Send feedback</button>
</form>
<p class="note">Two emails go out in the background: a thank-you to you and a notice to our
support team. You do not wait for them.</p>`,
  );
}

export function thanksPage(feedback: Feedback | undefined): string {
  const body = feedback
    ? `<h1>Thank you, ${escapeHtml(feedback.name)}!</h1>
<p>We saved your feedback. A confirmation is on its way to
<strong>${escapeHtml(feedback.email)}</strong>, and our support team has been told.</p>
<blockquote>${escapeHtml(feedback.message)}</blockquote>`
    : `<h1>Thank you!</h1>
<p>We saved your feedback, and a confirmation email is on its way.</p>`;
  return layout("Thank you", `${body}\n<p><a href="/">Send more feedback</a></p>`);
}

export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
