import type {
  Broadcast,
  BroadcastDelivery,
  BroadcastQueue,
  BroadcastSubscription,
  ExchangeRef,
} from "./broadcast.ts";
import { bindingMatches } from "./driver/broadcast.ts";
import type { WireMessage } from "./task-message.ts";

interface Binding {
  exchange: string;
  queue: string;
  bindingKey: string;
  onMessage: (delivery: BroadcastDelivery) => void;
}

/** The exchanges of one in-process broker: what memory:// transports with the same name share. */
export class MemoryExchanges {
  readonly bindings = new Set<Binding>();

  route(exchange: ExchangeRef, routingKey: string, message: WireMessage): void {
    for (const binding of [...this.bindings]) {
      if (binding.exchange !== exchange.name) continue;
      if (!bindingMatches(exchange, binding.bindingKey, routingKey)) continue;
      const copy = structuredClone(message);
      queueMicrotask(() => binding.onMessage({ message: copy, routingKey }));
    }
  }
}

/** Broadcast within one process, for tests and the memory:// broker. */
export function createMemoryBroadcast(exchanges = new MemoryExchanges()): Broadcast {
  const mine = new Set<Binding>();
  return {
    name: "memory",
    async connect() {},
    async close() {
      for (const binding of mine) exchanges.bindings.delete(binding);
      mine.clear();
    },
    async publish(exchange, routingKey, message) {
      exchanges.route(exchange, routingKey, message);
    },
    async subscribe(
      exchange: ExchangeRef,
      queue: BroadcastQueue,
      bindingKey: string,
      onMessage: (delivery: BroadcastDelivery) => void,
    ): Promise<BroadcastSubscription> {
      const binding: Binding = {
        exchange: exchange.name,
        queue: queue.name,
        bindingKey,
        onMessage,
      };
      exchanges.bindings.add(binding);
      mine.add(binding);
      return {
        async close() {
          exchanges.bindings.delete(binding);
          mine.delete(binding);
        },
      };
    },
  };
}
