/**
 * The servers an integration test run uses, from one documented set of environment variables
 * (see docs/testing.md). Two runs on one machine stay apart by pointing each at its own Redis
 * database and RabbitMQ vhost; within a run, tests keep apart by unique queue names and key
 * prefixes.
 */
export interface TestServers {
  /**
   * Redis, with the database of the run: `CELERY_TS_REDIS_URL`.
   * @default "redis://127.0.0.1:6379/0"
   */
  redisUrl: string;
  /**
   * RabbitMQ, with the vhost of the run: `CELERY_TS_AMQP_URL`.
   * @default "amqp://guest:guest@127.0.0.1:5672//" (the vhost `/`)
   */
  amqpUrl: string;
  /**
   * PostgreSQL, with the database of the run: `CELERY_TS_POSTGRES_URL`.
   * @default "postgres://postgres@127.0.0.1:5432/test"
   */
  postgresUrl: string;
}

export const TEST_SERVER_DEFAULTS: Readonly<TestServers> = {
  redisUrl: "redis://127.0.0.1:6379/0",
  amqpUrl: "amqp://guest:guest@127.0.0.1:5672//",
  postgresUrl: "postgres://postgres@127.0.0.1:5432/test",
};

const value = (env: NodeJS.ProcessEnv, name: string): string | undefined =>
  env[name]?.trim() || undefined;

/** The servers of this test run: the environment's, else the defaults. */
export function testServers(env: NodeJS.ProcessEnv = process.env): TestServers {
  return {
    redisUrl: value(env, "CELERY_TS_REDIS_URL") ?? TEST_SERVER_DEFAULTS.redisUrl,
    amqpUrl: value(env, "CELERY_TS_AMQP_URL") ?? TEST_SERVER_DEFAULTS.amqpUrl,
    postgresUrl: value(env, "CELERY_TS_POSTGRES_URL") ?? TEST_SERVER_DEFAULTS.postgresUrl,
  };
}

/**
 * How far from the run's Redis database the second database lies: the one test that needs Redis's
 * pub/sub to itself (Python Celery's remote control and events, whose channels kombu names after
 * the database) uses the run's database + 8, modulo 16. See docs/testing.md.
 */
export const SECOND_REDIS_DB_OFFSET = 8;

/** The same Redis URL on its second database: the run's database + {@link SECOND_REDIS_DB_OFFSET}, modulo 16. */
export function secondRedisUrl(url: string): string {
  const parsed = new URL(url);
  const db = (redisAddress(url).db + SECOND_REDIS_DB_OFFSET) % 16;
  parsed.pathname = `/${db}`;
  return parsed.toString();
}

/** Host, port and database of a `redis://` URL, for tests that open their own sockets. */
export function redisAddress(url: string): { host: string; port: number; db: number } {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: parsed.port ? Number(parsed.port) : 6379,
    db: Number(parsed.pathname.slice(1) || 0),
  };
}
