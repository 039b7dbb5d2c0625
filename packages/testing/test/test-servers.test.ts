import { describe, expect, it } from "vitest";
import { redisAddress, secondRedisUrl, testServers } from "../src/index.ts";

describe("testServers", () => {
  it("takes the run's servers from CELERY_TS_*_URL, else today's defaults", () => {
    expect(testServers({})).toEqual({
      redisUrl: "redis://127.0.0.1:6379/0",
      amqpUrl: "amqp://guest:guest@127.0.0.1:5672//",
      postgresUrl: "postgres://postgres@127.0.0.1:5432/test",
    });
    expect(
      testServers({
        CELERY_TS_REDIS_URL: "redis://127.0.0.1:6379/3",
        CELERY_TS_AMQP_URL: " amqp://guest:guest@127.0.0.1:5672/run_b ",
        CELERY_TS_POSTGRES_URL: "",
      }),
    ).toEqual({
      redisUrl: "redis://127.0.0.1:6379/3",
      amqpUrl: "amqp://guest:guest@127.0.0.1:5672/run_b",
      postgresUrl: "postgres://postgres@127.0.0.1:5432/test",
    });
  });

  it("derives the second Redis database as the run's + 8, modulo 16, keeping the rest", () => {
    expect(secondRedisUrl("redis://127.0.0.1:6379/0")).toBe("redis://127.0.0.1:6379/8");
    expect(secondRedisUrl("redis://127.0.0.1:6379/3")).toBe("redis://127.0.0.1:6379/11");
    expect(secondRedisUrl("redis://:pw@10.0.0.5:6380/12?x=1")).toBe(
      "redis://:pw@10.0.0.5:6380/4?x=1",
    );
    expect(redisAddress(secondRedisUrl("redis://127.0.0.1"))).toEqual({
      host: "127.0.0.1",
      port: 6379,
      db: 8,
    });
  });
});
