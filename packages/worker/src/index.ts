export { createConsoleLogger } from "./console-logger.ts";
export type { ConsoleLoggerOptions, LogLevel } from "./console-logger.ts";
export { createWorker } from "./worker.ts";
export type { Worker, WorkerOptions } from "./worker.ts";
export { startWorkerProcess } from "./worker-process.ts";
export type { WorkerProcess, WorkerProcessOptions } from "./worker-process.ts";
