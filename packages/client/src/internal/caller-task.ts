import { currentTask, type TaskContext } from "@celery-ts/core";

/**
 * The task whose function is running in this async call chain, if any. A task sent from inside
 * another becomes its child (parent_id, root_id), as Celery does, so monitoring shows the tree.
 */
export function callerTask(): TaskContext | undefined {
  try {
    return currentTask();
  } catch {
    // currentTask() throws outside a task's function: this send comes from plain application code.
    return undefined;
  }
}
