/** What an action answers: shown to the user as is. */
export interface ActionResult {
  ok: boolean;
  message: string;
  taskId?: string;
}

/** A user error (bad input): the HTTP layer answers 400 with its message. */
export class ActionError extends Error {}

/** One of the dashboard's actions: a function of the request's JSON body. */
export type Action = (body: Record<string, unknown>) => Promise<ActionResult>;

const QUEUE = /^[\w.:@-]{1,200}$/;

/** True for a name the dashboard accepts as a queue's: letters, digits and `_.:@-`. */
export function isQueueName(name: string): boolean {
  return QUEUE.test(name);
}

/** The body's non-empty string `key`, or an ActionError naming it. */
export function needString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== "string" || value === "") throw new ActionError(`"${key}" is required`);
  return value;
}

/** The body's optional string `key`: undefined when absent or empty. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new ActionError(`"${key}" must be a string`);
  return value;
}

/** The body's `queue`, checked to be a queue name. */
export function needQueue(body: Record<string, unknown>): string {
  const queue = needString(body, "queue");
  if (!isQueueName(queue)) throw new ActionError(`not a queue name: ${JSON.stringify(queue)}`);
  return queue;
}

/** "1 message", "3 messages". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
