import {
  adjustClock,
  forwardClock,
  isAddressedTo,
  jsonWireMessage,
  mailboxExchange,
  mailboxQueue,
  parseControlRequest,
  type Broadcast,
  type BroadcastSubscription,
  type Logger,
} from "@celery-ts/core";
import { runCommand, type ControlTarget } from "./commands.ts";

/**
 * A worker's pidbox node: listens on `<hostname>.celery.pidbox`, runs the commands addressed to
 * it, and replies `{ "<hostname>": <answer> }` to the caller's reply queue with its ticket.
 */
export async function listenMailbox(
  broadcast: Broadcast,
  target: ControlTarget,
  logger: Logger,
): Promise<BroadcastSubscription> {
  return broadcast.subscribe(
    mailboxExchange(),
    { name: mailboxQueue(target.hostname), expires: 10, messageTtl: 300 },
    "",
    ({ message }) => {
      adjustClock(message.headers.clock);
      const request = parseControlRequest(message);
      if (!request) {
        logger.warn("ignored a control message that is not a command");
        return;
      }
      const expires = message.headers.expires;
      if (typeof expires === "number" && expires > 0 && Date.now() / 1000 > expires) return;
      if (!isAddressedTo(request, target.hostname)) return;
      logger.debug("control command", { method: request.method, arguments: request.arguments });
      const answer = runCommand(target, request.method, request.arguments);
      if (!request.reply_to) return;
      const { exchange, routing_key: routingKey } = request.reply_to;
      broadcast
        .publish(
          { name: exchange, type: "direct" },
          routingKey,
          jsonWireMessage(
            { [target.hostname]: answer },
            { ticket: request.ticket ?? null, clock: forwardClock() },
          ),
        )
        .catch((error: unknown) =>
          logger.warn("could not reply to a control command", {
            method: request.method,
            error: String(error),
          }),
        );
    },
  );
}
