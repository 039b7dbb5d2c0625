const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The SQS MessageBody of an envelope. kombu base64-encodes the whole JSON envelope (whose `body`
 * is base64 already) unless `sqs_base64_encoding` is off.
 */
export function encodeMessageBody(envelope: string, base64: boolean): string {
  return base64 ? Buffer.from(envelope, "utf8").toString("base64") : envelope;
}

/**
 * kombu's `_optional_b64_decode`: a body that is canonical base64 (it encodes back to itself) is
 * decoded, anything else is taken as it is. So both kombu encodings, and foreign JSON, read.
 */
export function decodeMessageBody(body: string): string {
  const bytes = Buffer.from(body, "base64");
  if (bytes.toString("base64") !== body) return body;
  try {
    return utf8.decode(bytes);
  } catch {
    // Base64 of something that is not text: not ours; let the envelope decoder say so.
    return body;
  }
}
