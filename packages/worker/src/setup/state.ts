import {
  signals as processSignals,
  type ConsumeOptions,
  type CoordinationStore,
  type Delivery,
  type Logger,
  type ResultBackend,
  type TaskDefinition,
  type TaskMessage,
  type Transport,
} from "@celery-ts/core";
import { createKeepTrying, type KeepTrying } from "../internal/keep-trying.ts";
import { createLifecycle, type Lifecycle } from "../flow/lifecycle.ts";
import { createRateGate, type RateGate } from "../flow/rate-gate.ts";
import { createRecycler, type Recycler } from "../flow/recycle.ts";
import { createCanvasHooks, type CanvasHooks } from "../canvas/after-task.ts";
import { canvasBuiltins } from "../canvas/builtins.ts";
import { createWorkerControl, type WorkerControl } from "../control/worker-control.ts";
import type { LongTimeout } from "../internal/long-timeout.ts";
import type { WorkerMetrics } from "../metrics/worker-metrics.ts";
import { dispatch } from "../pipeline/dispatch.ts";
import { stop } from "../shutdown/stop.ts";
import { controlInternals } from "./control-link.ts";
import { buildRegistry, resolveOptions, type WorkerOptions } from "./options.ts";

/** A message taken for running: its delivery, the decoded message and the task that runs it. */
export interface Job {
  delivery: Delivery;
  message: TaskMessage;
  task: TaskDefinition;
}

/** Everything one worker holds: built once, passed to the pipeline, start and stop. */
export interface WorkerState {
  readonly options: WorkerOptions;
  readonly log: Logger;
  readonly hostname: string;
  concurrency: number;
  queues: string[];
  readonly lifecycle: Lifecycle;
  readonly recycler: Recycler;
  readonly registry: Map<string, TaskDefinition>;
  /** Celery's built-in canvas tasks (chord_unlock, map, starmap, chunks); the user's tasks win. */
  readonly builtins: Map<string, TaskDefinition>;
  consuming: AbortController;
  /** Read by the transport on every fetch: raised by one for each early message held. */
  readonly flow: ConsumeOptions;
  /** Set once stopping began: no consumer is started after it. */
  closing: boolean;
  readonly shutdown: AbortController;
  /** Keeps a task's final result through an outage (until the shutdown timeout). */
  readonly keepTrying: KeepTrying;
  readonly ready: Job[];
  readonly held: Map<LongTimeout, Job>;
  /** Every job from dispatch until its message is settled (shutdown waits for them). */
  readonly running: Set<Promise<void>>;
  /** The last job started for each task id, until it is settled. */
  readonly runningIds: Map<string, Promise<void>>;
  /** Concurrency slots in use: jobs whose task's code is running (at most `concurrency`). */
  busy: number;
  readonly gate: RateGate<Job>;
  /** Deliveries whose task is running now. */
  readonly active: Set<Delivery>;
  /** Deliveries requeued at shutdown while their task still ran: its outcome is discarded. */
  readonly abandoned: Set<Delivery>;
  readonly canvas: CanvasHooks;
  readonly control: WorkerControl;
  transport: Transport | undefined;
  backend: ResultBackend | undefined;
  coordination: CoordinationStore | undefined;
  metrics: WorkerMetrics | undefined;
  consumeLoop: Promise<void> | undefined;
  /**
   * What start() opens once connected (store, remote control, metrics): stop() waits for it
   * before closing them, so that a stop() landing meanwhile leaves nothing open.
   */
  opening: Promise<void> | undefined;
  /** add_consumer / cancel_consumer: each restart of the consume loop chains on the last. */
  restarting: Promise<void>;
  stopping: Promise<void> | undefined;
  readonly stopped: Promise<void>;
  readonly resolveStopped: () => void;
}

/** Builds a worker's state; the callbacks in it reach `state` only once it exists. */
export function createWorkerState(options: WorkerOptions): WorkerState {
  const { log, hostname, concurrency, prefetch, queues } = resolveOptions(options);
  const lifecycle = createLifecycle(options.signals ?? processSignals, log);
  const { maxTasksPerChild, maxMemoryPerChild } = options;
  const recycler = createRecycler({ maxTasksPerChild, maxMemoryPerChild }, (info) => {
    log.info("retiring this worker process; running tasks finish first", { ...info });
    try {
      options.onRetire?.(info);
    } catch (error) {
      // Reached from a task's end: a throw here must not fail the task that just ran.
      log.error("the onRetire callback threw; retiring anyway", { error: String(error) });
    }
    void stop(state, Infinity);
  });
  const registry = buildRegistry(options.tasks);
  const consuming = new AbortController();
  const flow = { prefetch, signal: consuming.signal };
  const gate = createRateGate<Job>({
    tasks: registry,
    release: (job) => {
      state.ready.push(job);
      dispatch(state);
    },
    adjustPrefetch: (delta) => (flow.prefetch += delta),
    maxExtraPrefetch: concurrency,
    store: () => state.coordination,
    log,
  });
  const canvasDeps = {
    transport: () => state.transport!,
    backend: () => state.backend,
    registry,
    log,
  };
  const canvas = createCanvasHooks(canvasDeps);
  const builtins = new Map(canvasBuiltins(canvasDeps).map((task) => [task.name, task]));
  const control = createWorkerControl(
    options,
    controlInternals(() => state, { hostname, registry, log, startedAt: Date.now() }),
  );
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (resolveStopped = resolve));
  const shutdown = new AbortController();
  const state: WorkerState = {
    options,
    log,
    hostname,
    concurrency,
    queues,
    lifecycle,
    recycler,
    registry,
    builtins,
    consuming,
    flow,
    closing: false,
    shutdown,
    keepTrying: createKeepTrying(log, shutdown.signal),
    ready: [],
    held: new Map(),
    running: new Set(),
    runningIds: new Map(),
    busy: 0,
    gate,
    active: new Set(),
    abandoned: new Set(),
    canvas,
    control,
    transport: undefined,
    backend: undefined,
    coordination: undefined,
    metrics: undefined,
    consumeLoop: undefined,
    opening: undefined,
    restarting: Promise.resolve(),
    stopping: undefined,
    stopped,
    resolveStopped,
  };
  return state;
}
