export { backendConformance } from "./backend-suite.ts";
export type { BackendHarness } from "./backend-suite.ts";
export {
  ABSENCE_MARGIN_SECONDS,
  PRESENCE_WAIT_SECONDS,
  transportConformance,
} from "./transport-suite.ts";
export { absenceMs, waitAbsenceWindow } from "./internal/transport-context.ts";
export type { TransportHarness } from "./transport-suite.ts";
export { workerConformance } from "./worker-suite.ts";
export type { SuiteWorker, SuiteWorkerOptions, WorkerHarness } from "./worker-suite.ts";
export {
  APP_DIR,
  PYTHON,
  environment,
  runPythonCeleryCli,
  runPythonClient,
  runPythonControl,
  startPythonWorker,
} from "./python-celery.ts";
export type { PythonCallOutcome, PythonCeleryConfig, PythonWorker } from "./python-celery.ts";
export { runPythonCanvas } from "./python-canvas.ts";
export type { PythonCanvasCommand, PythonCanvasOutcome } from "./python-canvas.ts";
export {
  SECOND_REDIS_DB_OFFSET,
  TEST_SERVER_DEFAULTS,
  redisAddress,
  secondRedisUrl,
  testServers,
} from "./test-servers.ts";
export type { TestServers } from "./test-servers.ts";
export { storeConformance } from "./store-suite.ts";
export { atomicPublishConformance } from "./atomic-publish-suite.ts";
export type { AtomicPublishHarness } from "./atomic-publish-suite.ts";
export type { StoreHarness } from "./store-suite.ts";
export { deleteRedisPrefix } from "./redis-keys.ts";
export { NODE_COMPILE_CACHE_DIR, spawnCollecting, withCompileCache } from "./spawn-collecting.ts";
export { waitUntil } from "./wait-until.ts";
export type { CollectingChild, SpawnCollectingOptions, SpawnExit } from "./spawn-collecting.ts";
export { captureLogger } from "./capture-logger.ts";
export type { CapturedLine } from "./capture-logger.ts";
