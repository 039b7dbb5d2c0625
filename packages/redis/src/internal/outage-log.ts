import type { Logger } from "@celery-ts/core";

/**
 * What the connections to one Redis server that report to one logger say about an outage, said
 * once for all of them: a worker's transport and result backend hold up to four connections to
 * the same server, and one outage is one "lost" line and one "reconnected" line (when the first
 * of them is back), not four pairs.
 * Each connection's own loss and recovery stay at debug level.
 */
export interface OutageLog {
  /** A connection that had been up is lost. */
  lost(id: object, connection: string, error: string | undefined): void;
  /** A lost connection is up again. */
  recovered(id: object): void;
  /** The connection is closed or gave up: the outage no longer waits for it. */
  forget(id: object): void;
}

interface Outage {
  since: number;
  down: Set<object>;
}

const byLogger = new WeakMap<Logger, Map<string, OutageLog>>();

/** The server a target names, without its database: `127.0.0.1:6379/5` -> `127.0.0.1:6379`. */
function serverOf(target: string): string {
  return target.replace(/\/\d+$/, "").replace(/ \(db \d+\)/, "");
}

function createOutageLog(logger: Logger, target: string, reconnectAttempts: number): OutageLog {
  let outage: Outage | undefined;
  const limit =
    reconnectAttempts === Infinity ? "" : ` (at most ${reconnectAttempts} attempts in a row)`;
  const end = (): void => {
    if (!outage) return;
    const seconds = Math.round((Date.now() - outage.since) / 100) / 10;
    outage = undefined;
    logger.info(`redis: reconnected to ${target} after ${seconds} s`, { downSeconds: seconds });
  };
  return {
    lost(id, connection, error) {
      if (outage) {
        outage.down.add(id);
        logger.debug(`redis: the ${connection} connection to ${target} is down too`);
        return;
      }
      outage = { since: Date.now(), down: new Set([id]) };
      logger.warn(`redis: lost the connection to ${target}; retrying with backoff${limit}`, {
        connection,
        ...(error !== undefined && { error }),
      });
    },
    recovered(id) {
      // The server answers again: the outage ends at the first connection back. The others
      // follow when next used (an idle one, such as a backend whose results go with the acks,
      // may reconnect only then), each at debug level.
      if (!outage?.down.delete(id)) return;
      end();
    },
    forget(id) {
      if (!outage?.down.delete(id)) return;
      // Closed or given up: the outage is over for it, but nothing came back.
      if (outage.down.size === 0) outage = undefined;
    },
  };
}

/** The outage log of `logger` for the server of `target` (shared by every connection to it). */
export function outageLog(logger: Logger, target: string, reconnectAttempts: number): OutageLog {
  let servers = byLogger.get(logger);
  if (!servers) {
    servers = new Map();
    byLogger.set(logger, servers);
  }
  const server = serverOf(target);
  let log = servers.get(server);
  if (!log) {
    log = createOutageLog(logger, target, reconnectAttempts);
    servers.set(server, log);
  }
  return log;
}
