import {
  encodeTaskMessage,
  prepareCanvas,
  publishAll,
  type CanvasCall,
  type ResultBackend,
  type ResultNode,
  type Signature,
  type TaskDefinition,
  type TaskMessage,
  type Transport,
} from "@celery-ts/core";

/** The running task that sends: its messages become its children and reply where it does. */
export interface TaskOrigin {
  id: string;
  rootId: string | null;
  replyTo?: string | undefined;
}

export function originOf(message: TaskMessage): TaskOrigin {
  const replyTo = message.properties.reply_to;
  return {
    id: message.headers.id,
    rootId: message.headers.root_id,
    ...(typeof replyTo === "string" && { replyTo }),
  };
}

/** Celery's default queue, where a signature goes when neither it nor its task names one. */
const DEFAULT_QUEUE = "celery";

export interface WorkerCanvasDeps {
  transport: () => Transport;
  backend: () => ResultBackend | undefined;
  registry: ReadonlyMap<string, TaskDefinition>;
}

/**
 * Applies signatures from inside a running task (its callbacks, the next step of its chain, a
 * chord body): the messages become the task's children (parent_id, root_id) and reply where the
 * task's own result goes; a task this worker knows keeps its declared queue and priority.
 */
export async function applyFromTask(
  deps: WorkerCanvasDeps,
  from: TaskOrigin,
  sig: Signature,
  call: CanvasCall,
): Promise<ResultNode> {
  const { id, rootId, replyTo } = from;
  const prepared = await prepareCanvas(sig, call, {
    backend: deps.backend(),
    replyTo: replyTo ?? "",
    defaultQueue: DEFAULT_QUEUE,
    routeOf: (task) => {
      const options = deps.registry.get(task)?.options;
      return options && { queue: options.queue, priority: options.priority };
    },
    parent: { id, rootId: rootId ?? id },
  });
  await publishAll(
    deps.transport(),
    prepared.messages.map(({ message, route }) => ({
      message: encodeTaskMessage(message),
      options: route,
    })),
  );
  return prepared.result;
}
