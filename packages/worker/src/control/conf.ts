/** What `inspect conf` reads of a worker: its options that have a Celery setting. */
export interface ConfSource {
  /** The broker and backend URLs with any password hidden; absent when given as objects. */
  broker?: string;
  backend?: string;
  concurrency: number;
  /** Messages taken ahead, in all. */
  prefetch: number;
  taskEvents: boolean;
  remoteControl: boolean;
  maxTasksPerChild?: number | undefined;
  maxMemoryPerChild?: number | undefined;
  stateDb?: string | undefined;
}

/**
 * The worker's settings under Celery's names and in Celery's value shapes, as `celery inspect
 * conf` shows a Python worker's (`app.conf.table()`). Only settings the worker has are listed: a
 * celery-ts worker has no Celery settings table, so there is no "changed from the default" to
 * tell apart, and `with_defaults` changes nothing.
 */
export function celeryConf(source: ConfSource): Record<string, unknown> {
  const conf: Record<string, unknown> = {};
  if (source.broker !== undefined) conf.broker_url = source.broker;
  if (source.backend !== undefined) conf.result_backend = source.backend;
  conf.worker_concurrency = source.concurrency;
  // Celery's prefetch is a multiple of the concurrency; ours may be any number.
  const multiplier = source.prefetch / source.concurrency;
  if (Number.isInteger(multiplier)) conf.worker_prefetch_multiplier = multiplier;
  conf.worker_send_task_events = source.taskEvents;
  conf.worker_enable_remote_control = source.remoteControl;
  // Messages are acknowledged once the task's outcome is stored, failures included.
  conf.task_acks_late = true;
  conf.task_acks_on_failure_or_timeout = true;
  // Only JSON is read and written.
  conf.accept_content = ["json"];
  conf.task_serializer = "json";
  conf.result_serializer = "json";
  conf.event_serializer = "json";
  if (source.maxTasksPerChild !== undefined)
    conf.worker_max_tasks_per_child = source.maxTasksPerChild;
  if (source.maxMemoryPerChild !== undefined)
    conf.worker_max_memory_per_child = source.maxMemoryPerChild;
  if (source.stateDb !== undefined) conf.worker_state_db = source.stateDb;
  return conf;
}
