import type { Logger } from "../logger.ts";
import type { ConnectionEvent } from "../transport.ts";

/** A driver's listeners of connection losses and recoveries (`Transport.onConnectionEvent`). */
export interface ConnectionEvents {
  /** What the transport offers as `onConnectionEvent`. */
  add(listener: (event: ConnectionEvent) => void): () => void;
  /**
   * Tells every listener. A listener that throws does not stop the others or the reconnect; its
   * error is logged as a warning.
   */
  emit(event: ConnectionEvent): void;
}

export function createConnectionEvents(logger: Logger): ConnectionEvents {
  const listeners = new Set<(event: ConnectionEvent) => void>();
  return {
    add(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    emit(event) {
      for (const listener of listeners) {
        try {
          listener(event);
        } catch (error) {
          // A metrics counter failing must not break a reconnect, but it is not hidden either.
          logger.warn("a listener of onConnectionEvent threw; fix the listener", {
            event: event.type,
            error: String((error as Error)?.stack ?? error),
          });
        }
      }
    },
  };
}
