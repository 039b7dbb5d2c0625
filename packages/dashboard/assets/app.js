/* global document, window, location, fetch, setTimeout, clearTimeout, URLSearchParams, EventSource */
// celery-ts dashboard: draws the overview from the live stream (Server-Sent Events), the task list
// and task page from the JSON API. No build step, no dependencies.
"use strict";

const $ = (selector) => document.querySelector(selector);
const esc = (value) =>
  String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
const time = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "");
const secs = (s) =>
  s === undefined || s === null ? "" : s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`;
const rate = (r) => (r ? r.toFixed(2) : "0");
const badge = (state) => `<span class="state ${esc(state)}">${esc(state)}</span>`;

function toast(message, ok = true) {
  const el = $("#toast");
  el.textContent = message;
  el.className = ok ? "ok" : "error";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 6000);
}

/**
 * GETs or POSTs `url` and reads its JSON answer: `{ ok, status, data }`. An answer that is not
 * JSON (a 401 from the sign-in gate, a proxy's error page) becomes `data.error`, its text.
 */
async function call(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    return { ok: false, status: 0, data: { error: `the dashboard did not answer: ${error}` } };
  }
  const text = await response.text();
  try {
    return { ok: response.ok, status: response.status, data: JSON.parse(text) };
  } catch {
    const error = `HTTP ${response.status}: ${text.trim() || response.statusText}`;
    return { ok: false, status: response.status, data: { error } };
  }
}

/** A part of the page's address decoded; undefined when it is not a valid %-escape. */
function decodedPart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/** Runs an action after the user confirms it. */
async function act(name, body, question) {
  if (!window.confirm(question)) return undefined;
  const {
    ok,
    status,
    data: result,
  } = await call(`/api/actions/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-celery-ts-dashboard": "1" },
    body: JSON.stringify(body),
  });
  toast(result.message ?? result.error ?? `HTTP ${status}`, ok && result.ok !== false);
  return result;
}

/** Sets an element's HTML only when it changed: unchanged rows (and their buttons) stay put. */
const drawn = new WeakMap();
function setHTML(el, html) {
  if (drawn.get(el) === html) return;
  drawn.set(el, html);
  el.innerHTML = html;
}

function drawOverview(data) {
  $("#live").textContent =
    `live · ${new Date(data.now * 1000).toLocaleTimeString()} · ${data.tasksKept} tasks kept`;
  const states = ["RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED"];
  setHTML(
    $("#counts"),
    states
      .map(
        (s) =>
          `<a class="card" href="#/tasks?state=${s}"><b>${data.counts[s] ?? 0}</b>${badge(s)}</a>`,
      )
      .join(""),
  );
  setHTML(
    $("#workers tbody"),
    data.workers
      .map(
        (w) => `<tr data-worker="${esc(w.hostname)}"><td>${esc(w.hostname)}</td>
        <td><span class="state ${w.online ? "SUCCESS" : "FAILURE"}">${w.online ? "online" : w.offline ? "offline" : "lost"}</span></td>
        <td>${w.heartbeatAge.toFixed(0)} s ago</td><td>${w.concurrency ?? ""}</td><td>${w.active}</td>
        <td>${w.processed}</td><td>${esc(w.loadavg.join(" "))}</td><td>${esc(w.software)}</td></tr>`,
      )
      .join("") ||
      `<tr><td colspan="8" class="muted">no worker seen yet (workers send heartbeats unless --without-heartbeat)</td></tr>`,
  );
  setHTML(
    $("#queues tbody"),
    data.queues
      .map(
        (
          q,
        ) => `<tr data-queue="${esc(q.name)}"><td>${esc(q.name)}</td><td class="ready">${q.depth ?? "n/a"}</td>
        <td class="reserved">${q.reserved ?? ""}</td><td>${rate(q.rateIn)}</td>
        <td>${rate(q.rateOut)}</td><td>${deadLetterCell(q)}</td>
        <td><button class="danger" data-purge="${esc(q.name)}">Purge ready</button></td></tr>`,
      )
      .join(""),
  );
  setHTML($("#throughput"), throughputChart(data.throughput));
  const longest = Math.max(0.001, ...data.runtimes.map((r) => r.p99));
  setHTML(
    $("#runtimes tbody"),
    data.runtimes
      .map(
        (
          r,
        ) => `<tr><td>${esc(r.name)}</td><td>${r.count}</td><td>${secs(r.p50)}</td><td>${secs(r.p90)}</td><td>${secs(r.p99)}</td>
        <td class="bar"><svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
          <rect width="${(100 * r.p99) / longest}" height="10" class="p99"/><rect width="${(100 * r.p90) / longest}" height="10" class="p90"/>
          <rect width="${(100 * r.p50) / longest}" height="10" class="p50"/></svg></td>
        <td><button data-rate="${esc(r.name)}">Rate limit</button></td></tr>`,
      )
      .join(""),
  );
}

/** A queue's dead-letter count, linked to their list. */
function deadLetterCell(q) {
  if (q.deadLetters === null || q.deadLetters === undefined) return "n/a";
  const href = `#/dead-letters/${encodeURIComponent(q.name)}`;
  return `<a class="dead-count" href="${href}">${q.deadLetters}${q.deadLetters >= 1000 ? "+" : ""}</a>`;
}

/** The dead letters of a queue: when, task id and name, reason; replay or purge each or all. */
async function drawDeadLetters(queue) {
  $("#dead-queue").textContent = queue;
  const { ok, data } = await call(`/api/queues/${encodeURIComponent(queue)}/dead-letters`);
  if (!ok) {
    $("#dead-list tbody").innerHTML =
      `<tr><td colspan="4" class="error">${esc(data.error)}</td></tr>`;
    return;
  }
  $("#dead-list tbody").innerHTML =
    data.letters
      .map(
        (l) => `<tr data-dead="${esc(l.taskId ?? "")}"><td>${time(l.rejectedAt / 1000)}</td>
        <td>${esc(l.name ?? "?")}<br><small class="muted">${esc(l.taskId ?? "no task id")}</small></td>
        <td>${esc(l.reason)}${l.kept ? "" : ' <small class="muted">(message not kept: cannot be replayed)</small>'}</td>
        <td>${l.taskId && l.kept ? `<button data-replay-task="${esc(l.taskId)}">Replay</button>` : ""}
        ${l.taskId ? `<button class="danger" data-purge-task="${esc(l.taskId)}">Purge</button>` : ""}</td></tr>`,
      )
      .join("") || `<tr><td colspan="4" class="muted">no dead letters</td></tr>`;
}

/** Replays or purges dead letters of the queue shown (of one task id, or all), once confirmed. */
async function onDeadLetters(verb, taskId) {
  const queue = $("#dead-queue").textContent;
  const which = taskId ? `the dead letters of task ${taskId}` : "every dead letter";
  const question =
    verb === "replay"
      ? `Put ${which} of "${queue}" back on the queue, to run again?`
      : `Delete ${which} of "${queue}" for good?`;
  const name = verb === "replay" ? "replayDeadLetters" : "purgeDeadLetters";
  const result = await act(name, taskId ? { queue, taskId } : { queue }, question);
  if (result) drawDeadLetters(queue);
}

/** Stacked bars per bucket: succeeded (green), failed (red), retried (amber). */
function throughputChart(points) {
  const w = 600;
  const h = 120;
  const max = Math.max(
    1,
    ...points.map(
      (p) => (p.values.succeeded ?? 0) + (p.values.failed ?? 0) + (p.values.retried ?? 0),
    ),
  );
  const bw = w / points.length;
  const bars = points
    .map((p, i) => {
      let y = h;
      return ["succeeded", "failed", "retried"]
        .map((k) => {
          const bh = ((p.values[k] ?? 0) / max) * (h - 10);
          y -= bh;
          return bh > 0
            ? `<rect class="${k}" x="${i * bw + 1}" y="${y}" width="${bw - 2}" height="${bh}"><title>${time(p.t)} ${k}: ${p.values[k]}</title></rect>`
            : "";
        })
        .join("");
    })
    .join("");
  return `<svg viewBox="0 0 ${w} ${h}" role="img" aria-label="throughput"><text x="2" y="10" class="axis">${max}</text>
    <line x1="0" y1="${h}" x2="${w}" y2="${h}" class="axis"/>${bars}</svg>
    <p class="legend"><span class="succeeded">■</span> succeeded <span class="failed">■</span> failed <span class="retried">■</span> retried</p>`;
}

async function drawTasks() {
  const params = new URLSearchParams({ q: $("#q").value, state: $("#state").value });
  const { ok, data: tasks } = await call(`/api/tasks?${params}`);
  if (!ok) {
    $("#task-list tbody").innerHTML =
      `<tr><td colspan="6" class="error">${esc(tasks.error)}</td></tr>`;
    return;
  }
  $("#task-list tbody").innerHTML =
    tasks
      .map(
        (
          t,
        ) => `<tr data-task="${esc(t.uuid)}"><td><a href="#/task/${esc(t.uuid)}">${esc(t.name || "?")}</a><br><small class="muted">${esc(t.uuid)}</small></td>
        <td>${badge(t.state)}</td><td>${esc(t.worker)}</td><td>${time(t.updated)}</td><td>${secs(t.runtime)}</td><td>${t.retries}</td></tr>`,
      )
      .join("") ||
    `<tr><td colspan="6" class="muted">no task matches (workers send task events with -E)</td></tr>`;
}

async function drawTask(id) {
  const { ok, data: t } = await call(`/api/tasks/${encodeURIComponent(id)}`);
  const el = $("#task");
  if (!ok) {
    el.innerHTML = `<p class="error">${esc(t.error)}</p>`;
    return;
  }
  const link = (uuid, label) => `<a href="#/task/${esc(uuid)}">${esc(label ?? uuid)}</a>`;
  const running = ["PENDING", "RECEIVED", "STARTED", "RETRY"].includes(t.state);
  el.innerHTML = `<h2>${esc(t.name)} ${badge(t.state)}</h2>
    <dl>
      <dt>Id</dt><dd>${esc(t.uuid)}</dd><dt>Worker</dt><dd>${esc(t.worker)}</dd>
      <dt>Queue</dt><dd>${esc(t.queue ?? "")}</dd>
      <dt>Received</dt><dd>${time(t.received)}</dd><dt>Runtime</dt><dd>${secs(t.runtime)}</dd>
      <dt>Retries</dt><dd>${t.retries}</dd><dt>Args</dt><dd><code>${esc(t.args)}</code></dd>
      <dt>Kwargs</dt><dd><code>${esc(t.kwargs)}</code></dd>
      ${t.result !== undefined ? `<dt>Result</dt><dd><code id="result">${esc(t.result)}</code></dd>` : ""}
      ${t.exception ? `<dt>Exception</dt><dd><code>${esc(t.exception)}</code></dd>` : ""}
      ${t.parentId && t.parentId !== t.uuid ? `<dt>Parent</dt><dd>${link(t.parentId)}</dd>` : ""}
      ${t.rootId && t.rootId !== t.uuid ? `<dt>Root</dt><dd>${link(t.rootId)}</dd>` : ""}
      ${t.children.length ? `<dt>Children</dt><dd>${t.children.map((c) => `${link(c.uuid, c.name)} ${badge(c.state)}`).join("<br>")}</dd>` : ""}
    </dl>
    <p class="actions">
      ${running ? `<button class="danger" id="revoke">Revoke</button> <button class="danger" id="terminate">Revoke and terminate</button>` : ""}
      ${t.state === "FAILURE" || t.state === "REVOKED" ? `<button id="retry">Retry (send again)</button>` : ""}
    </p>
    ${t.traceback ? `<h3>Traceback</h3><pre id="traceback">${esc(t.traceback)}</pre>` : ""}
    <h3>Events</h3><ol class="history">${t.history.map(([at, type]) => `<li>${time(at)} ${esc(type)}</li>`).join("")}</ol>`;
  $("#revoke")?.addEventListener("click", () =>
    act("revoke", { id }, `Revoke ${t.name}[${id}]?`).then(() => drawTask(id)),
  );
  $("#terminate")?.addEventListener("click", () =>
    act(
      "revoke",
      { id, terminate: true },
      `Revoke ${t.name}[${id}] and stop it if it is running?`,
    ).then(() => drawTask(id)),
  );
  $("#retry")?.addEventListener("click", async () => {
    const result = await act("retry", { id }, `Send ${t.name} again with the same arguments?`);
    if (result?.taskId) location.hash = `#/task/${result.taskId}`;
  });
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.dataset.purge) {
    const queue = target.dataset.purge;
    act("purge", { queue }, `Delete every ready (waiting) message of the queue "${queue}"?`);
  } else if (target.dataset.replayTask) {
    onDeadLetters("replay", target.dataset.replayTask);
  } else if (target.dataset.purgeTask) {
    onDeadLetters("purge", target.dataset.purgeTask);
  } else if (target.id === "replay-all" || target.id === "purge-all") {
    onDeadLetters(target.id === "replay-all" ? "replay" : "purge");
  } else if (target.dataset.rate) {
    const task = target.dataset.rate;
    const value = window.prompt(`Rate limit for ${task} (like 10/s, 100/m; 0 for none)`, "10/s");
    if (value)
      act("rateLimit", { task, rate: value }, `Limit ${task} to ${value} on every worker?`);
  }
});

let current = "";
/** The dead-letter count of the queue shown when its list was last drawn. */
let deadSeen;
function show() {
  const hash = location.hash || "#/";
  const [path, query = ""] = hash.slice(1).split("?");
  $("#overview").hidden = path !== "/";
  $("#tasks").hidden = path !== "/tasks";
  $("#task").hidden = !path.startsWith("/task/");
  $("#dead-letters").hidden = !path.startsWith("/dead-letters/");
  current = path;
  deadSeen = undefined;
  if (path === "/tasks") {
    const state = new URLSearchParams(query).get("state");
    if (state !== null) $("#state").value = state;
    drawTasks();
  } else if (path.startsWith("/task/") || path.startsWith("/dead-letters/")) {
    const task = path.startsWith("/task/");
    const name = decodedPart(path.slice(task ? 6 : 14));
    if (name === undefined) {
      // Not drawn again by the live stream: there is nothing to draw.
      current = "";
      const message = `not a valid address: ${esc(hash)} (a % must be followed by two hex digits); back to the <a href="#/">overview</a>`;
      if (task) $("#task").innerHTML = `<p class="error">${message}</p>`;
      else
        $("#dead-list tbody").innerHTML = `<tr><td colspan="4" class="error">${message}</td></tr>`;
    } else if (task) drawTask(name);
    else drawDeadLetters(name);
  }
}
window.addEventListener("hashchange", show);
$("#q").addEventListener("input", drawTasks);
$("#state").addEventListener("change", drawTasks);

const source = new EventSource("/api/stream");
source.onmessage = (message) => {
  const data = JSON.parse(message.data);
  drawOverview(data);
  if (current === "/tasks") drawTasks();
  else if (current.startsWith("/task/") && !document.querySelector("#task pre:hover"))
    drawTask(decodedPart(current.slice(6)));
  else if (current.startsWith("/dead-letters/")) {
    // Drawn again only when the queue's count changes: its buttons stay put under the pointer.
    const queue = decodedPart(current.slice(14));
    const count = data.queues.find((q) => q.name === queue)?.deadLetters;
    if (deadSeen !== undefined && count !== deadSeen) drawDeadLetters(queue);
    deadSeen = count;
  }
};
source.onerror = () => ($("#live").textContent = "disconnected: retrying…");
show();
