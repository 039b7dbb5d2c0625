import type { EnvelopeRoute, WireMessage } from "@celery-ts/core";
import { ENVELOPE_HEAD, ENVELOPE_MIDDLE, envelopeParts } from "@celery-ts/core/driver";
import { Command } from "ioredis";

/**
 * A PUBLISH of a message's kombu envelope, written as one RESP frame into a buffer: the bytes
 * ioredis would write for `publish(channel, encodeEnvelope(message, route))`, without the
 * envelope as a string. That string, ~30 kB for a batch of task events, was copied three times
 * on its way to the socket (ioredis measures it, joins it into the command's text, and the socket
 * encodes that), each copy garbage for the next scavenge: the frame is written once, into a
 * buffer that the next frame reuses once Redis answered.
 */
export class PublishFrame extends Command {
  readonly #frame: Buffer;

  /** `channel` is not written (the frame holds it): it names the command in ioredis's errors. */
  constructor(channel: string, frame: Buffer) {
    super("publish", [channel]);
    this.#frame = frame;
  }

  /** What ioredis writes to the socket. */
  override toWritable(): Buffer {
    return this.#frame;
  }
}

/** Frames above this size get a buffer of their own, not kept. */
const KEPT_BYTES = 1024 * 1024;
/** The smallest buffer allocated: small frames share one size, so any spare fits the next. */
const MIN_BYTES = 64 * 1024;
/** Buffers kept for the next frames (a worker has a frame or two in flight). */
const KEPT_BUFFERS = 4;
const spare: Buffer[] = [];

/**
 * The frame of `publish(channel, envelope)` in a buffer of the spares (or a new one): `frame` is
 * the bytes to write, `release` gives the buffer back once the frame is written and answered
 * (never before: the socket may still hold it), and is not called if the command failed.
 */
export function publishFrame(
  channel: string,
  message: WireMessage,
  route: EnvelopeRoute,
): { frame: Buffer; release: () => void } {
  const { base64, rest } = envelopeParts(message, route);
  // Both parts are ASCII: their length is their size.
  const envelope = ENVELOPE_HEAD.length + base64.length + ENVELOPE_MIDDLE.length + rest.length;
  const head = `*3\r\n$7\r\npublish\r\n$${String(Buffer.byteLength(channel))}\r\n${channel}\r\n$${String(envelope)}\r\n`;
  const size = Buffer.byteLength(head) + envelope + 2;
  let buffer = spare.pop();
  if (buffer === undefined || buffer.length < size) {
    // Room to grow (up to the kept size): the next, slightly larger, frame fits as well.
    buffer = Buffer.allocUnsafeSlow(
      size > KEPT_BYTES ? size : Math.min(KEPT_BYTES, Math.max(size * 2, MIN_BYTES)),
    );
  }
  let at = buffer.write(head, 0, "utf8");
  at += buffer.write(ENVELOPE_HEAD, at, "latin1");
  at += buffer.write(base64, at, "latin1");
  at += buffer.write(ENVELOPE_MIDDLE, at, "latin1");
  at += buffer.write(rest, at, "latin1");
  at += buffer.write("\r\n", at, "latin1");
  if (at !== size) {
    // The $len above would not match the bytes: Redis would read the stream out of step.
    throw new Error(
      `redis: the PUBLISH frame for ${channel} is ${String(at)} bytes, not the ${String(size)} computed (non-ASCII envelope part?)`,
    );
  }
  const kept = buffer;
  let released = false;
  return {
    frame: buffer.subarray(0, at),
    // Once only: a buffer in the spares twice would be handed to two frames at a time.
    release: () => {
      if (released) return;
      released = true;
      if (kept.length <= KEPT_BYTES && spare.length < KEPT_BUFFERS) spare.push(kept);
    },
  };
}
