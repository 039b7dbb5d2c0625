import { parseArgs } from "node:util";
import { startDashboard } from "./dashboard.ts";
import type { DashboardAuth } from "./internal/auth.ts";

const USAGE = `Usage: celery-ts dashboard [options]

A live dashboard in the browser for the fleet, Python Celery workers included: workers, queues,
tasks, actions (revoke, retry, purge, replay or purge dead letters, rate limit) and charts, from
Celery's events and the broker.

Options:
  -b, --broker <url>          broker URL [env CELERY_BROKER_URL, default sqlite:///celery-ts.db]
      --backend <url>         result backend URL [env CELERY_RESULT_BACKEND]
      --host <address>        address to listen on [default 127.0.0.1]
      --port <n>              port [default 5555]
      --token <secret>        require this token (open the page once as /?token=...)
                              [env CELERY_TS_DASHBOARD_TOKEN]
      --basic-auth <u:p>      require basic auth with this user and password
  -Q, --queues <a,b>          queues to show before any worker reports them [default celery]
      --max-tasks <n>         tasks kept in memory [default 10000]
      --no-enable-events      do not ask the workers to send task events
  -h, --help

Any --host other than 127.0.0.1 needs --token or --basic-auth.`;

function auth(token: string | undefined, basic: string | undefined): DashboardAuth | undefined {
  if (token) return { token };
  if (basic === undefined) return undefined;
  const colon = basic.indexOf(":");
  if (colon < 1) throw new Error(`--basic-auth takes user:password, not "${basic}"`);
  return { username: basic.slice(0, colon), password: basic.slice(colon + 1) };
}

/** `celery-ts dashboard`: runs until SIGINT/SIGTERM. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      broker: { type: "string", short: "b" },
      backend: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      token: { type: "string" },
      "basic-auth": { type: "string" },
      queues: { type: "string", short: "Q" },
      "max-tasks": { type: "string" },
      "no-enable-events": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const port = values.port === undefined ? 5555 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port takes a port number, not "${values.port}"`);
  const maxTasks = values["max-tasks"] === undefined ? 10_000 : Number(values["max-tasks"]);
  if (!Number.isInteger(maxTasks) || maxTasks < 1)
    throw new Error(`--max-tasks takes a whole number, not "${values["max-tasks"]}"`);
  const backend = values.backend ?? process.env.CELERY_RESULT_BACKEND;
  const dashboard = await startDashboard({
    broker: values.broker ?? process.env.CELERY_BROKER_URL ?? "sqlite:///celery-ts.db",
    ...(backend && { backend }),
    host: values.host ?? "127.0.0.1",
    port,
    auth: auth(values.token ?? process.env.CELERY_TS_DASHBOARD_TOKEN, values["basic-auth"]),
    ...(values.queues !== undefined && { queues: values.queues.split(",").map((q) => q.trim()) }),
    maxTasks,
    enableEvents: values["no-enable-events"] !== true,
  });
  process.stdout.write(`celery-ts dashboard: ${dashboard.url} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await dashboard.close();
  return 0;
}
