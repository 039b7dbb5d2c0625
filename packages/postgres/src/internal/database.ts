import {
  isCeleryTsError,
  silentLogger,
  type CeleryTsError,
  type ConnectionEvent,
  type Logger,
} from "@celery-ts/core";
import { configError, connectionError, networkErrorCode } from "@celery-ts/core/driver";
import pg from "pg";

export const PKG = "postgres";

// SQLSTATE classes and codes that may clear if tried again: connection exceptions, the server
// shutting down or starting, too many connections, serialization failures and deadlocks.
const RETRYABLE = /^(08|57P0[123]|53300|40001|40P01|55P03)/;
// Login, a missing database or schema permissions: trying again cannot help; the user must act.
const CONFIGURATION = /^(28|3D000|3F000|42501)/;

/** A pg error as a CeleryTsError: what the caller can do about it decides the code. */
export function mapError(error: unknown, doing: string, where: string): CeleryTsError {
  if (isCeleryTsError(error)) return error;
  const code = String((error as { code?: unknown } | undefined)?.code ?? "");
  const text = error instanceof Error ? error.message : String(error);
  if (CONFIGURATION.test(code)) {
    return configError(
      PKG,
      `${doing} failed at ${where}: ${text}; check the URL's user, password and database`,
      error,
    );
  }
  const network = networkErrorCode(error) !== undefined;
  const dropped = /terminated|timeout|Connection ended/i.test(text) && code === "";
  const retryable = network || dropped || RETRYABLE.test(code);
  const hint = network ? "; is PostgreSQL running and reachable there?" : "";
  return connectionError(PKG, `${doing} failed at ${where}: ${text}${hint}`, {
    cause: error,
    retryable,
  });
}

/** True when `error` says the connection itself failed or was ended (not the statement). */
function connectionLost(error: unknown): boolean {
  const cause = isCeleryTsError(error) ? error.cause : error;
  const code = String((cause as { code?: unknown } | undefined)?.code ?? "");
  const text = cause instanceof Error ? cause.message : String(cause);
  return (
    networkErrorCode(cause) !== undefined ||
    /^(08|57P0[123])/.test(code) ||
    (code === "" && /terminat|timeout|Connection ended/i.test(text))
  );
}

/** A schema name, checked, as a quoted identifier. */
export function quoteSchema(schema: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,39}$/.test(schema)) {
    throw configError(PKG, `schema must be letters, digits and "_" (at most 40), got "${schema}"`);
  }
  return `"${schema}"`;
}

export interface DatabaseOptions {
  url: string;
  /** What uses it, for messages: "PostgreSQL transport". */
  what: string;
  /** Statements that create what is missing; run once, under an advisory lock. */
  ddl: string;
  /** The NOTIFY channel that wakes this side. */
  channel: string;
  logger?: Logger;
  /**
   * Told of each loss and return it logs: role "command" (the pool that runs statements) and
   * "listen" (the LISTEN connection). For the transport's `onConnectionEvent`.
   */
  onEvent?: (event: ConnectionEvent) => void;
}

/** One pool per transport or backend, the schema created on first use, and one LISTEN link. */
export class Database {
  readonly where: string;
  readonly #options: DatabaseOptions;
  readonly #logger: Logger;
  #pool: pg.Pool | undefined;
  #ready: Promise<pg.Pool> | undefined;
  #listener: pg.Client | undefined;
  #listening: Promise<void> | undefined;
  readonly #wakers = new Set<(payload: string | undefined) => void>();
  #closed = false;
  /** Who logs: "postgres transport", "postgres result backend". */
  readonly #name: string;
  /** The pool's connections were lost and no statement has succeeded since. */
  #poolLost = false;
  /**
   * Counts the losses logged; each pool connection records the count it was opened in, so that
   * the connections one cut ends, failing one after the other, are logged as one loss.
   */
  #generation = 0;
  readonly #born = new WeakMap<pg.ClientBase, number>();
  /** The LISTEN link was lost and has not come back yet. */
  #listenLost = false;

  constructor(options: DatabaseOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    const url = new URL(options.url);
    this.where = `${url.hostname}:${url.port || 5432}${url.pathname}`;
    this.#name = `${PKG} ${options.what.replace(/^PostgreSQL /, "")}`;
  }

  /** Runs a statement; pg errors become CeleryTsErrors. */
  async query<R extends pg.QueryResultRow>(doing: string, text: string, values: unknown[] = []) {
    let client: pg.PoolClient | undefined;
    // A checked-out connection ended by the server emits "error" (the query fails as well):
    // without a listener that would end the process.
    const ended = (error: Error): void => this.#poolDropped(error, client);
    try {
      client = await (await this.ready()).connect();
      client.on("error", ended);
      const result = await client.query<R>(text, values);
      client.off("error", ended);
      client.release();
      this.#poolBack();
      return result;
    } catch (error) {
      const lost = connectionLost(error);
      client?.off("error", ended);
      // A connection that failed is not reused.
      client?.release(lost ? (error as Error) : undefined);
      if (lost) this.#poolDropped(error, client);
      throw mapError(error, doing, this.where);
    }
  }

  /**
   * The pool lost its connections (the server restarted, or ended the sessions): logged once
   * until a statement succeeds again. The pool opens new connections on the next statement.
   */
  #poolDropped(error: unknown, client?: pg.ClientBase): void {
    if (this.#closed || this.#poolLost) return;
    // Opened before the last loss logged: part of that outage.
    if (client && (this.#born.get(client) ?? this.#generation) < this.#generation) return;
    this.#poolLost = true;
    this.#generation++;
    this.#logger.warn(`${this.#name}: lost the connection to ${this.where}; reconnecting`, {
      error: String((error as Error)?.message ?? error),
    });
    this.#options.onEvent?.({ type: "lost", role: "command" });
  }

  #poolBack(): void {
    if (!this.#poolLost) return;
    this.#poolLost = false;
    this.#logger.info(`${this.#name}: reconnected to ${this.where}`);
    this.#options.onEvent?.({ type: "recovered", role: "command" });
  }

  /** Opens the pool and creates the tables, once; a failure is retried by the next call. */
  ready(): Promise<pg.Pool> {
    this.#ready ??= (async () => {
      const pool = (this.#pool ??= new pg.Pool({
        connectionString: this.#options.url,
        max: 4,
        connectionTimeoutMillis: 5_000,
      }));
      pool.on("connect", (client) => this.#born.set(client, this.#generation));
      // An idle connection ended by the server: the next statement opens another.
      pool.on("error", (error, client) => this.#poolDropped(error, client));
      try {
        await pool.query(
          `BEGIN; SELECT pg_advisory_xact_lock(hashtext('celery_ts_ddl')); ${this.#options.ddl}; COMMIT`,
        );
      } catch (error) {
        throw mapError(error, `opening the ${this.#options.what}`, this.where);
      }
      return pool;
    })();
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }

  /**
   * Calls `wake(payload)` on each NOTIFY on the channel, and `wake(undefined)` after the LISTEN
   * link (re)connects, when notifications may have been missed. Resolves once listening.
   */
  async listen(wake: (payload: string | undefined) => void): Promise<() => void> {
    this.#wakers.add(wake);
    const unsubscribe = (): void => void this.#wakers.delete(wake);
    try {
      await this.#link();
    } catch (error) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  #link(): Promise<void> {
    this.#listening ??= (async () => {
      const client = new pg.Client({ connectionString: this.#options.url });
      client.on("notification", ({ payload }) => this.#wakers.forEach((wake) => wake(payload)));
      client.on("error", (error) => this.#lost(client, error));
      try {
        await client.connect();
        await client.query(`LISTEN "${this.#options.channel}"`);
      } catch (error) {
        void client.end().catch(() => {});
        throw mapError(error, "listening for notifications", this.where);
      }
      if (this.#closed) return void client.end().catch(() => {});
      this.#listener = client;
      if (this.#listenLost) {
        this.#listenLost = false;
        this.#logger.info(`${this.#name}: reconnected the LISTEN connection to ${this.where}`);
        this.#options.onEvent?.({ type: "recovered", role: "listen" });
      }
      this.#wakers.forEach((wake) => wake(undefined));
    })();
    this.#listening.catch((error: unknown) => this.#lost(undefined, error));
    return this.#listening;
  }

  /**
   * The LISTEN link dropped, or could not come back: consumers keep polling meanwhile; it is
   * tried again each second, and the loss is logged once until it is back.
   */
  #lost(client: pg.Client | undefined, error: unknown): void {
    if (this.#closed || (client && client !== this.#listener) || this.#wakers.size === 0) {
      this.#listening = undefined;
      return;
    }
    if (!this.#listenLost) {
      this.#listenLost = true;
      this.#logger.warn(
        `${this.#name}: lost the LISTEN connection to ${this.where}; reconnecting`,
        { error: String((error as Error)?.message ?? error) },
      );
      this.#options.onEvent?.({ type: "lost", role: "listen" });
    }
    void client?.end().catch(() => {});
    this.#listener = undefined;
    this.#listening = undefined;
    setTimeout(() => void this.#link().catch(() => {}), 1_000).unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const listener = this.#listener;
    this.#listener = undefined;
    await Promise.allSettled([listener?.end(), this.#pool?.end()]);
  }
}
