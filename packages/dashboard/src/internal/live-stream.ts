import type { ServerResponse } from "node:http";

/** The page's live feed (Server-Sent Events): `snapshot()` sent on open, then each second. */
export class LiveStream {
  readonly #streams = new Set<ServerResponse>();
  readonly #snapshot: () => unknown;
  readonly #ticker: NodeJS.Timeout;

  constructor(snapshot: () => unknown) {
    this.#snapshot = snapshot;
    this.#ticker = setInterval(() => this.#tick(), 1000);
    this.#ticker.unref();
  }

  open(response: ServerResponse): void {
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    response.write(this.#frame());
    this.#streams.add(response);
    response.on("close", () => this.#streams.delete(response));
  }

  close(): void {
    clearInterval(this.#ticker);
    for (const response of this.#streams) response.end();
    this.#streams.clear();
  }

  #frame(): string {
    return `data: ${JSON.stringify(this.#snapshot())}\n\n`;
  }

  #tick(): void {
    if (this.#streams.size === 0) return;
    const data = this.#frame();
    for (const response of this.#streams) response.write(data);
  }
}
