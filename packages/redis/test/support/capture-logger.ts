// Moved to @celery-ts/testing; kept so that tests importing it from here go on working.
export { captureLogger, type CapturedLine } from "@celery-ts/testing";
