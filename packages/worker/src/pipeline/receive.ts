import {
  decodeTaskMessage,
  notRegisteredError,
  parseCeleryDate,
  type Delivery,
  type TaskMessage,
} from "@celery-ts/core";
import { setLongTimeout } from "../internal/long-timeout.ts";
import { identityOfRaw, unhonourable, unhonourableCanvas } from "../internal/refusal.ts";
import type { WorkerState } from "../setup/state.ts";
import { discardRevoked } from "./revoke.ts";
import { deadLetter, refuse } from "./settle.ts";

const DEFAULT_DECODING = {};

/**
 * The first step for each delivery: decode it (refusing what cannot run), find its task, then
 * hold it until its eta or hand it to the rate gate.
 */
export function receive(state: WorkerState, delivery: Delivery): void {
  if (delivery.error) {
    void deadLetter(state, delivery, delivery.error.message, identityOfRaw(delivery));
    return;
  }
  let message: TaskMessage;
  try {
    const reason = unhonourable(delivery.message);
    if (reason !== undefined) throw new Error(reason);
    const { maxBodyBytes } = state.options;
    message = decodeTaskMessage(
      delivery.message,
      maxBodyBytes === undefined ? DEFAULT_DECODING : { maxBodyBytes },
    );
    const canvasReason = unhonourableCanvas(message);
    if (canvasReason !== undefined) throw new Error(canvasReason);
  } catch (error) {
    void refuse(state, delivery, (error as Error).message);
    return;
  }
  const { control, registry } = state;
  const { task: name, id } = message.headers;
  const task = registry.get(name) ?? state.builtins.get(name);
  if (!task) {
    const known = [...registry.keys()].join(", ") || "none";
    const reason = `unknown task "${name}": this worker registers ${known}`;
    // Celery stores NotRegistered for it (so the caller's get() fails at once) and sends task-failed.
    control.events.failed(message, notRegisteredError(name), true);
    void refuse(state, delivery, reason, notRegisteredError(name));
    return;
  }
  const job = { delivery, message, task };
  const etaMs = message.headers.eta
    ? parseCeleryDate(message.headers.eta).getTime() - Date.now()
    : 0;
  control.received(message, delivery.queue, etaMs > 0);
  if (control.isRevoked(id)) {
    void discardRevoked(state, job, "revoked");
    return;
  }
  if (etaMs > 0) {
    // Held unacknowledged, like Celery: if this process dies the broker redelivers it. Held
    // messages get prefetch slots of their own, so they never starve work that is due.
    const { flow, held } = state;
    flow.prefetch++;
    const timer = setLongTimeout(() => {
      held.delete(timer);
      control.requests.due(id);
      flow.prefetch--;
      state.gate.submit(job);
    }, etaMs);
    held.set(timer, job);
    return;
  }
  state.gate.submit(job);
}
