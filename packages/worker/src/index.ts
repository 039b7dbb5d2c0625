export { createConsoleLogger } from "./console-logger.ts";
export type { ConsoleLoggerOptions, LogLevel } from "./console-logger.ts";
export { createWorker } from "./worker.ts";
export type { Worker, WorkerOptions } from "./worker.ts";
