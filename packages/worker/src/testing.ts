// `@celery-ts/worker/testing`: run tasks in tests without a broker. Needs `@celery-ts/client`.
export { createTestClient } from "./testing/test-client.ts";
export type { TestClient, TestClientOptions } from "./testing/test-client.ts";
