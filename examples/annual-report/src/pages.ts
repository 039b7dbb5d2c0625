// The app's one page: a "generate report" form, and a small script that starts the task, then
// polls GET /status/:id and shows PENDING, the progress, then a link to the report (or why the
// task failed).
import { escapeHtml } from "./html.ts";

export function indexPage(
  years: readonly number[],
  selected: number,
  pollIntervalMs: number,
): string {
  const options = years
    .map((y) => `<option value="${y}"${y === selected ? " selected" : ""}>${y}</option>`)
    .join("");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Annual reports</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  main { max-width: 36rem; margin: 3rem auto; padding: 2rem 2.5rem; background: #fff;
         border-radius: 12px; box-shadow: 0 1px 4px rgb(0 0 0 / 0.08); }
  h1 { margin-top: 0; font-size: 1.6rem; }
  select, button { font: inherit; padding: 0.5rem 0.8rem; border-radius: 6px; }
  select { border: 1px solid #c5cad3; }
  button { font-weight: 600; color: #fff; background: #2f6fdf; border: 0; cursor: pointer; }
  button:disabled { background: #9db5e6; cursor: default; }
  #job { margin-top: 1.5rem; padding-top: 1rem; border-top: 1px solid #e3e6eb; }
  #status { font-weight: 600; }
  #status[data-state="SUCCESS"] { color: #1d7a3a; }
  #status[data-state="FAILURE"], #status[data-state="REVOKED"] { color: #a11d1d; }
  progress { width: 100%; height: 1rem; }
  #history { color: #5b6472; font-size: 0.85rem; padding-left: 1.2rem; }
  code { font-size: 0.85rem; }
  .note { color: #5b6472; font-size: 0.9rem; }
</style>
</head>
<body>
<main>
<h1>Annual sales report</h1>
<p>A report sums a year of orders, month by month: it takes a while. A worker builds it in the
background; this page asks how far it got every ${escapeHtml(String(pollIntervalMs / 1000))} s.</p>
<form id="generate">
  <label for="year">Year</label>
  <select id="year" name="year">${options}</select>
  <button id="start" type="submit">Generate report</button>
</form>
<p class="note">The ledger starts in January 2019 and is closed through June 2026: earlier or
later months have no data, and their reports fail.</p>
<section id="job" hidden>
  <p>Task <code id="task-id"></code></p>
  <p id="status" role="status" data-state=""></p>
  <progress id="progress" max="12" value="0"></progress>
  <p id="result"></p>
  <ol id="history"></ol>
</section>
</main>
<script>
const POLL_MS = ${JSON.stringify(pollIntervalMs)};
const $ = (id) => document.getElementById(id);
let last = "";

function show(status) {
  const { state, progress, url, error, year } = status;
  let text = state;
  if (state === "PENDING") text = "PENDING: waiting for a worker";
  if (progress) text = state + " " + progress.done + "/" + progress.total + (progress.step ? ": " + progress.step : "");
  if (error) text = state + ": " + error;
  $("status").textContent = text;
  $("status").dataset.state = state;
  if (progress) { $("progress").max = progress.total; $("progress").value = progress.done; }
  if (state === "SUCCESS") $("progress").value = $("progress").max;
  if (url) {
    const link = document.createElement("a");
    link.href = url;
    link.id = "report-link";
    link.textContent = "Open the " + year + " report";
    $("result").replaceChildren(link);
  }
  if (text !== last) {
    last = text;
    const item = document.createElement("li");
    item.textContent = new Date().toLocaleTimeString("en-GB") + " " + text;
    $("history").append(item);
  }
}

const finished = (state) => ["SUCCESS", "FAILURE", "REVOKED"].includes(state);

async function poll(id) {
  try {
    const response = await fetch("/status/" + encodeURIComponent(id));
    if (!response.ok) throw new Error("status " + response.status);
    const status = await response.json();
    show(status);
    if (finished(status.state)) { $("start").disabled = false; return; }
  } catch (error) {
    $("result").textContent = "Could not get the status (" + error.message + "); trying again.";
  }
  setTimeout(poll, POLL_MS, id);
}

function follow(id) {
  $("job").hidden = false;
  $("task-id").textContent = id;
  $("result").replaceChildren();
  $("history").replaceChildren();
  last = "";
  show({ id, state: "PENDING" });
  setTimeout(poll, POLL_MS, id);
}

$("generate").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("start").disabled = true;
  const response = await fetch("/reports", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ year: Number($("year").value) }),
  });
  if (!response.ok) {
    $("start").disabled = false;
    $("job").hidden = false;
    $("status").textContent = "Could not start the report (" + response.status + ")";
    return;
  }
  const { id } = await response.json();
  history.replaceState(null, "", "?task=" + encodeURIComponent(id)); // a reload keeps following it
  follow(id);
});

const resumed = new URLSearchParams(location.search).get("task");
if (resumed) { $("start").disabled = true; follow(resumed); }
</script>
</body>
</html>
`;
}

export function notFoundPage(message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; margin: 3rem;">
<h1>Not found</h1><p>${escapeHtml(message)}</p><p><a href="/">Back</a></p>
</body></html>
`;
}
