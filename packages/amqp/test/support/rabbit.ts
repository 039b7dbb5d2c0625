import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { testServers } from "@celery-ts/testing";
import type { Channel, ChannelModel } from "amqplib";
// amqplib as the package loads it (with its decoder fix), whichever module loads it first.
import { connect } from "../../src/internal/amqplib.ts";
import { DELAY_LEVELS, delayNames } from "../../src/internal/delay.ts";
import { parseAmqpUrl } from "../../src/internal/parse-url.ts";

/** The RabbitMQ (and vhost) of this test run: CELERY_TS_AMQP_URL, see docs/testing.md. Never restarted. */
export const BROKER_URL = testServers().amqpUrl;
/** The vhost of BROKER_URL, as RabbitMQ names it in its messages. */
export const VHOST = parseAmqpUrl(BROKER_URL).vhost;

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** A name no other test uses: `<label>-<uuid>`. */
export const unique = (label: string): string => `${label}-${randomUUID()}`;

export async function until(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * A plain amqplib connection, as an operator's tool would have: to inspect declarations, inject
 * messages, and delete what a test declared. Opened lazily, one per test file.
 */
export function rabbitAdmin() {
  let model: Promise<ChannelModel> | undefined;
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  const shared = new Set<string>();

  const conn = (): Promise<ChannelModel> => {
    model ??= connect(BROKER_URL.replace(/\/\/$/, "/%2F")).then((m) => {
      m.on("error", () => undefined);
      return m;
    });
    return model;
  };

  /** Runs `work` on a fresh channel, closed afterwards (a failed check closes it anyway). */
  const withChannel = async <T>(work: (channel: Channel) => Promise<T>): Promise<T> => {
    const channel = await (await conn()).createChannel();
    channel.on("error", () => undefined);
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  };

  return {
    withChannel,
    /** Deletes these (and everything `trackQueue` added) after the file's tests. */
    trackQueue(...names: string[]) {
      for (const name of names) queues.add(name);
    },
    trackExchange(...names: string[]) {
      for (const name of names) exchanges.add(name);
    },
    /** A Celery-style queue: the queue, its exchange of the same name, and its dead letters. */
    trackCeleryQueue(name: string, deadSuffix = ".dead") {
      queues.add(name);
      queues.add(`${name}${deadSuffix}`);
      exchanges.add(name);
    },
    /**
     * Deletes the exchange after the file's tests if nothing is bound to it then: for shared
     * names such as Python Celery's remote-control exchange `celery.pidbox`.
     */
    trackSharedExchange(name: string) {
      shared.add(name);
    },
    trackDelayTopology(prefix: string) {
      const names = delayNames(prefix);
      for (let level = 0; level < DELAY_LEVELS; level++) {
        queues.add(names.level(level));
        exchanges.add(names.level(level));
      }
      exchanges.add(names.delivery);
    },
    async queueExists(name: string): Promise<boolean> {
      return withChannel((channel) => channel.checkQueue(name).then(() => true)).catch(() => false);
    },
    async exchangeExists(name: string): Promise<boolean> {
      return withChannel((channel) => channel.checkExchange(name).then(() => true)).catch(
        () => false,
      );
    },
    async messageCount(name: string): Promise<number> {
      return withChannel(async (channel) => (await channel.checkQueue(name)).messageCount);
    },
    async consumerCount(name: string): Promise<number> {
      return withChannel(async (channel) => (await channel.checkQueue(name)).consumerCount);
    },
    async cleanup() {
      if (!model && queues.size === 0 && exchanges.size === 0 && shared.size === 0) return;
      const failures: string[] = [];
      // One channel per deletion: a refused one closes its channel, and the rest must still go.
      for (const name of queues) {
        await withChannel((channel) => channel.deleteQueue(name)).catch((error: unknown) => {
          failures.push(`queue ${name}: ${String(error)}`);
        });
      }
      for (const name of exchanges) {
        await withChannel((channel) => channel.deleteExchange(name)).catch((error: unknown) => {
          failures.push(`exchange ${name}: ${String(error)}`);
        });
      }
      for (const name of shared) {
        // Refused (and left alone) while something is bound to it.
        await withChannel((channel) => channel.deleteExchange(name, { ifUnused: true })).catch(
          () => undefined,
        );
      }
      queues.clear();
      exchanges.clear();
      shared.clear();
      await (await conn()).close().catch(() => undefined);
      model = undefined;
      if (failures.length > 0) throw new Error(`cleanup failed:\n${failures.join("\n")}`);
    },
  };
}

export type RabbitAdmin = ReturnType<typeof rabbitAdmin>;

/**
 * Whether RabbitMQ lists the queue in the run's vhost, asked through `rabbitmqctl list_queues`:
 * unlike a passive declare, looking this way does not count as using the queue (its x-expires).
 */
export async function queueListed(name: string): Promise<boolean> {
  const { stdout } = await promisify(execFile)(
    "rabbitmqctl",
    ["list_queues", "-p", VHOST, "name", "-q", "--no-table-headers"],
    { timeout: 30_000 },
  );
  return stdout.split("\n").some((line) => line.trim() === name);
}

/**
 * Closes a connection from the server side, as an operator (or a failing node) would:
 * `rabbitmqctl close_connection` with the pid of the connection whose peer port is ours.
 */
export async function closeConnectionFromServer(localPort: number | undefined): Promise<void> {
  if (localPort === undefined) throw new Error("the connection has no local port");
  const run = promisify(execFile);
  let pid: string | undefined;
  for (let attempt = 0; attempt < 20 && pid === undefined; attempt++) {
    const { stdout } = await run("rabbitmqctl", ["list_connections", "pid", "peer_port", "-q"], {
      timeout: 30_000,
    });
    pid = stdout
      .split("\n")
      .map((line) => line.trim().split(/\s+/))
      .find(([, port]) => port === String(localPort))?.[0];
    if (pid === undefined) await sleep(100);
  }
  if (pid === undefined) throw new Error(`no connection from port ${localPort}`);
  await run("rabbitmqctl", ["close_connection", pid, "closed by a celery-ts test"], {
    timeout: 30_000,
  });
}
