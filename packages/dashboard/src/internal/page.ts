/** The page's HTML: a shell that assets/app.js fills from the JSON API and the live stream. */
export function renderPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>celery-ts dashboard</title>
<link rel="stylesheet" href="/assets/style.css">
</head>
<body>
<header>
  <h1>celery-ts</h1>
  <nav><a href="#/">Overview</a> <a href="#/tasks">Tasks</a></nav>
  <span id="live" class="muted">connecting…</span>
</header>
<main>
  <section id="overview">
    <div id="counts" class="cards"></div>
    <h2>Workers</h2>
    <div class="scroll"><table id="workers"><thead><tr><th>Worker</th><th>Status</th><th>Heartbeat</th><th>Concurrency</th><th>Active</th><th>Processed</th><th>Load</th><th>Software</th></tr></thead><tbody></tbody></table></div>
    <h2>Queues</h2>
    <div class="scroll"><table id="queues"><thead><tr><th>Queue</th><th title="waiting on the broker">Ready</th><th title="taken by a worker: prefetched or running">Reserved</th><th>In /s</th><th>Out /s</th><th>Dead letters</th><th></th></tr></thead><tbody></tbody></table></div>
    <h2>Throughput <small class="muted">tasks per 10 s, last 10 minutes</small></h2>
    <div id="throughput" class="chart"></div>
    <h2>Runtime per task <small class="muted">seconds: p50, p90, p99</small></h2>
    <div class="scroll"><table id="runtimes"><thead><tr><th>Task</th><th>Runs</th><th>p50</th><th>p90</th><th>p99</th><th></th><th></th></tr></thead><tbody></tbody></table></div>
  </section>
  <section id="tasks" hidden>
    <form id="filter" onsubmit="return false">
      <input id="q" type="search" placeholder="Search name, id, worker, args" aria-label="Search tasks">
      <select id="state" aria-label="State"><option value="">All states</option>
        <option>PENDING</option><option>RECEIVED</option><option>STARTED</option><option>SUCCESS</option>
        <option>FAILURE</option><option>RETRY</option><option>REVOKED</option><option>REJECTED</option></select>
    </form>
    <div class="scroll"><table id="task-list"><thead><tr><th>Task</th><th>State</th><th>Worker</th><th>Time</th><th>Runtime</th><th>Retries</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section id="task" hidden></section>
  <section id="dead-letters" hidden>
    <h2>Dead letters of <span id="dead-queue"></span> <small class="muted">oldest first</small></h2>
    <p class="actions"><button id="replay-all">Replay all</button> <button class="danger" id="purge-all">Purge all</button></p>
    <div class="scroll"><table id="dead-list"><thead><tr><th>Rejected</th><th>Task</th><th>Reason</th><th></th></tr></thead><tbody></tbody></table></div>
  </section>
</main>
<div id="toast" role="status" hidden></div>
<script src="/assets/app.js"></script>
</body>
</html>
`;
}
