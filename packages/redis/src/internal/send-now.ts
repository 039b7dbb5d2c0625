import { Command, type Redis } from "ioredis";

/**
 * Writes one command to the socket at once: ioredis's auto-pipeline would hold it until
 * setImmediate (a turn of the event loop more) and wrap it in a pipeline object. A client given
 * with ioredis's keyPrefix gets it on the command's keys as on its other commands. `utf8` replies
 * come as strings, else as ioredis returns them by default.
 */
export function sendNow(
  client: Redis,
  name: string,
  args: (string | number)[],
  reply?: "utf8",
): Promise<unknown> {
  const { keyPrefix } = client.options;
  const options = {
    ...(keyPrefix && { keyPrefix }),
    ...(reply && { replyEncoding: reply }),
  };
  return client.sendCommand(new Command(name, args, options)) as Promise<unknown>;
}
