import type { TaskDefinition, TaskMessage } from "@celery-ts/core";

/**
 * The fields every log line about a task carries. A message's `shadow` header names the task in
 * logs, as Celery does (`get_task_name`): e.g. one generic task run under many display names.
 * The registered name is kept beside it.
 */
export function taskLogFields(task: TaskDefinition, message: TaskMessage): Record<string, unknown> {
  const { id, shadow } = message.headers;
  return shadow ? { task: shadow, registered: task.name, id } : { task: task.name, id };
}
