export { backendConformance } from "./backend-suite.ts";
export type { BackendHarness } from "./backend-suite.ts";
export { transportConformance } from "./transport-suite.ts";
export type { TransportHarness } from "./transport-suite.ts";
export { PYTHON, runPythonClient, startPythonWorker } from "./python-celery.ts";
export type { PythonCallOutcome, PythonCeleryConfig, PythonWorker } from "./python-celery.ts";
