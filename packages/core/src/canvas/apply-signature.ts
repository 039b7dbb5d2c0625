import { randomUUID } from "node:crypto";
import { CeleryTsError } from "../errors.ts";
import type { ResultBackend } from "../result-backend.ts";
import type { Signature } from "../task-message.ts";
import {
  addToListOption,
  chordHeader,
  chordSize,
  freeze,
  freezeChain,
  rootOf,
  unrollGroup,
} from "./freeze.ts";
import { groupNode, taskNode, toResultTuple, type ResultNode } from "./result-tuple.ts";
import { checkSignature } from "./signature-options.ts";
import {
  messageFromSignature,
  type MessageDefaults,
  type PreparedMessage,
} from "./signature-message.ts";
import {
  asSignature,
  CANVAS_TASK,
  cloneSignature,
  createSignature,
  isRecord,
  signatureList,
} from "./signature.ts";

/** What a client or worker gives the canvas engine to send with. */
export interface CanvasSender extends MessageDefaults {
  /** Where chords count their parts and groups are saved; chords need one. */
  backend?: ResultBackend | undefined;
}

/** Arguments and options added when a signature is applied (Celery's `apply_async(args, kwargs, **options)`). */
export interface CanvasCall {
  /** Put before the signature's own args, unless the signature is immutable. */
  args?: readonly unknown[];
  kwargs?: Record<string, unknown>;
  /** Celery's option names (`queue`, `countdown`, `task_id`, `link`, `chain`, ...), over the signature's. */
  options?: Record<string, unknown>;
}

export interface PreparedCanvas {
  /** The result tree: a chain's last step with its parents, a group with its members, ... */
  result: ResultNode;
  /** Every message to publish, in order; publish them together (one round trip where possible). */
  messages: PreparedMessage[];
}

/**
 * Turns a signature of any canvas type (task, chain, group, chord, chunks, map, starmap) into
 * the messages that run it, as Celery's `apply_async` of that type does. Backend bookkeeping a
 * chord needs (its size on Redis, for instance) is written before this resolves, so publish the
 * messages afterwards. An option celery-ts cannot honour, anywhere in the canvas, is a `CONFIG`
 * error (see `unhonourableSignature`).
 */
export async function prepareCanvas(
  sig: Signature,
  call: CanvasCall,
  sender: CanvasSender,
): Promise<PreparedCanvas> {
  // Refused whole, before anything is sent, rather than an option dropped silently.
  checkSignature({ ...sig, options: { ...sig.options, ...definedOnly(call.options) } });
  const messages: PreparedMessage[] = [];
  const result = await apply(cloneSignature(sig), call, sender, messages);
  return { result, messages };
}

function apply(
  sig: Signature,
  call: CanvasCall,
  sender: CanvasSender,
  out: PreparedMessage[],
): Promise<ResultNode> {
  switch (sig.subtask_type) {
    case null:
    case undefined:
    case "xmap":
    case "xstarmap":
      return Promise.resolve(applyTask(sig, call, sender, out));
    case "chain":
      return applyChain(sig, call, sender, out);
    case "group":
      return applyGroup(sig, call, sender, out);
    case "chord":
      return applyChord(sig, call, sender, out);
    case "chunks":
      return applyGroup(chunksAsGroup(sig, sender), call, sender, out);
    default:
      throw new CeleryTsError(
        "CONFIG",
        `cannot apply a signature of type ${JSON.stringify(sig.subtask_type)} (task ${sig.task}): ` +
          "celery-ts knows task, chain, group, chord, chunks, xmap and xstarmap signatures",
      );
  }
}

/** Celery's `Signature._merge`: call args first (unless immutable), options over the signature's. */
function merge(sig: Signature, call: CanvasCall): Signature {
  const options = { ...sig.options };
  for (const [key, value] of Object.entries(call.options ?? {})) {
    if (value === undefined) continue;
    // group_id is one of Celery's immutable options: a task keeps the group it was frozen in.
    if (key === "group_id" && options.group_id !== undefined) continue;
    options[key] = value;
  }
  if (sig.immutable) return { ...sig, options };
  return {
    ...sig,
    args: [...(call.args ?? []), ...sig.args],
    kwargs: { ...sig.kwargs, ...call.kwargs },
    options,
  };
}

function applyTask(
  sig: Signature,
  call: CanvasCall,
  sender: CanvasSender,
  out: PreparedMessage[],
): ResultNode {
  const merged = merge(sig, call);
  merged.options.task_id ??= randomUUID();
  const inner = merged.subtask_type === "xmap" || merged.subtask_type === "xstarmap";
  if (inner && merged.options.queue === undefined) {
    // Celery routes map and starmap by the task they map (`route_name`).
    const queue = innerQueue(merged, sender);
    if (queue !== undefined) merged.options.queue = queue;
  }
  const prepared = messageFromSignature(merged, sender);
  out.push(prepared);
  return taskNode(prepared.message.headers.id);
}

async function applyChain(
  sig: Signature,
  call: CanvasCall,
  sender: CanvasSender,
  out: PreparedMessage[],
): Promise<ResultNode> {
  const options: Record<string, unknown> = { ...sig.options, ...definedOnly(call.options) };
  const { task_id, group_id, chord, group_index, link, link_error, chain, ...rest } = options;
  const args = sig.immutable ? sig.args : [...(call.args ?? []), ...sig.args];
  const { steps, nodes } = freezeChain(
    sig,
    {
      taskId: optionalString(task_id),
      groupId: optionalString(group_id),
      chord: isRecord(chord) ? asSignature(chord, "a chain's chord option") : undefined,
      groupIndex: typeof group_index === "number" ? group_index : undefined,
      rootId: optionalString(rest.root_id),
    },
    signatureList(link_error, "a chain's link_error option"),
  );
  if (steps.length === 0) {
    throw new CeleryTsError("CONFIG", "cannot apply an empty chain: give it at least one step");
  }
  for (const callback of signatureList(link, "a chain's link option")) {
    addToListOption(steps[0]!, "link", callback);
  }
  const first = steps.pop()!;
  const later = chain === undefined || chain === null ? [] : signatureList(chain, "a chain option");
  await apply(
    first,
    {
      args,
      ...(call.kwargs && { kwargs: call.kwargs }),
      options: { ...rest, chain: [...steps, ...later] },
    },
    sender,
    out,
  );
  return nodes[0]!;
}

async function applyGroup(
  sig: Signature,
  call: CanvasCall,
  sender: CanvasSender,
  out: PreparedMessage[],
): Promise<ResultNode> {
  const options = { ...sig.options, ...definedOnly(call.options) };
  if (sig.options.group_id !== undefined) options.group_id = sig.options.group_id;
  const gid = optionalString(options.task_id) ?? randomUUID();
  delete options.task_id;
  const members = unrollGroup(sig);
  const nodes: ResultNode[] = [];
  for (const [index, member] of members.entries()) {
    nodes.push(
      await apply(
        member,
        {
          ...(call.args && { args: call.args }),
          ...(call.kwargs && { kwargs: call.kwargs }),
          options: { ...options, group_id: gid, group_index: index },
        },
        sender,
        out,
      ),
    );
  }
  return groupNode(gid, nodes);
}

async function applyChord(
  sig: Signature,
  call: CanvasCall,
  sender: CanvasSender,
  out: PreparedMessage[],
): Promise<ResultNode> {
  const backend = chordBackend(sender);
  const partialArgs = sig.immutable ? sig.args : [...(call.args ?? []), ...sig.args];
  const options: Record<string, unknown> = { ...sig.options, ...definedOnly(call.options) };
  const taskId = optionalString(options.task_id);
  delete options.task_id;
  const header = chordHeader(sig);
  const gid = optionalString(header.options.task_id) ?? randomUUID();
  header.options.task_id = gid;
  const body = asSignature(cloneSignature(asSignature(sig.kwargs.body, "a chord's body")), "body");
  Object.assign(body.options, options);
  const bodyNode = freeze(body, { taskId, rootId: optionalString(options.root_id) });
  const { chain: _chain, chord: _chord, ...headerOptions } = options;
  const members = unrollGroup(header);
  if (members.length === 0) {
    // Nothing will ever complete the chord: Celery sends the body at once, with no results.
    await apply(body, { args: [[]] }, sender, out);
    rootOf(bodyNode).parent = groupNode(gid, []);
    return bodyNode;
  }
  const size = members.reduce((sum, member) => sum + chordSize(member), 0);
  if (backend.chords) await backend.chords.setSize(gid, size);
  const nodes: ResultNode[] = [];
  for (const [index, member] of members.entries()) {
    freeze(member, {
      groupId: gid,
      groupIndex: index,
      chord: body,
      rootId: optionalString(options.root_id),
    });
    nodes.push(
      await apply(
        member,
        { args: partialArgs, options: { ...headerOptions, group_id: gid, group_index: index } },
        sender,
        out,
      ),
    );
  }
  const headerNode = groupNode(gid, nodes);
  if (!backend.chords) out.push(chordUnlockMessage(gid, body, headerNode, sender));
  rootOf(bodyNode).parent = headerNode;
  return bodyNode;
}

function chordBackend(sender: CanvasSender): ResultBackend {
  const backend = sender.backend;
  if (!backend) {
    throw new CeleryTsError(
      "NO_RESULT_BACKEND",
      "a chord needs a result backend (its body is sent once every header task's result is " +
        'stored); configure one, e.g. backend: "redis://127.0.0.1:6379/0"',
    );
  }
  if (backend.noChords) throw new CeleryTsError("CONFIG", backend.noChords);
  return backend;
}

/**
 * Celery's fallback for backends without a chord counter: `celery.chord_unlock(group_id, body,
 * result=[member tuples])`, sent with a one-second countdown, which retries until every member
 * is ready and then sends the body.
 */
function chordUnlockMessage(
  gid: string,
  body: Signature,
  header: ResultNode,
  sender: CanvasSender,
): PreparedMessage {
  const queue = body.options.queue ?? sender.routeOf?.(body.task)?.queue;
  const unlock = createSignature(
    CANVAS_TASK.chordUnlock,
    [gid, body],
    { interval: null, max_retries: null, result: (header.members ?? []).map(toResultTuple) },
    { countdown: 1, ...(queue !== undefined && { queue }) },
  );
  unlock.options.task_id = randomUUID();
  return messageFromSignature(unlock, sender);
}

/** Celery's `chunks(task, it, n)`: a group of `celery.starmap` tasks over `n`-sized parts. */
function chunksAsGroup(sig: Signature, sender: CanvasSender): Signature {
  const { task, it, n } = sig.kwargs;
  if (!Array.isArray(it) || typeof n !== "number" || !(n >= 1)) {
    throw new CeleryTsError(
      "CONFIG",
      "a chunks signature needs kwargs { task, it: [...], n: a number >= 1 }",
    );
  }
  const inner = asSignature(task, "the task of a chunks signature");
  const queue = sig.options.queue ?? innerQueue(sig, sender);
  const parts: Signature[] = [];
  for (let i = 0; i < it.length; i += n) {
    parts.push(
      createSignature(
        CANVAS_TASK.xstarmap,
        [],
        { task: inner, it: it.slice(i, i + n) },
        {},
        {
          subtaskType: "xstarmap",
          immutable: true,
        },
      ),
    );
  }
  return createSignature(
    CANVAS_TASK.group,
    [],
    { tasks: parts },
    { ...sig.options, ...(queue !== undefined && { queue }) },
    { subtaskType: "group" },
  );
}

function innerQueue(sig: Signature, sender: CanvasSender): unknown {
  const inner = isRecord(sig.kwargs.task) ? asSignature(sig.kwargs.task, "a mapped task") : null;
  if (!inner) return undefined;
  return inner.options.queue ?? sender.routeOf?.(inner.task)?.queue;
}

function definedOnly(options: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined));
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
