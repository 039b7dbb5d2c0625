interface Connectable {
  connect(): Promise<void>;
  close(): Promise<void>;
}

/** A broker or backend given as an object or a URL, resolved on first use. */
export interface LazyConnection<T extends Connectable> {
  /** Resolves the URL once; later calls share the same promise (and its CONFIG error, if any). */
  get(): Promise<T>;
  connect(): Promise<void>;
  /** Closes the connection only if it was built here from a URL: an object given stays the caller's. */
  close(): Promise<void>;
}

export function lazyConnection<T extends Connectable>(
  spec: T | string,
  resolve: (spec: T | string) => Promise<T>,
): LazyConnection<T> {
  let resolved: Promise<T> | undefined;
  const get = (): Promise<T> => (resolved ??= resolve(spec));
  return {
    get,
    async connect() {
      await (await get()).connect();
    },
    async close() {
      if (typeof spec !== "string" || !resolved) return;
      // A URL that never resolved opened nothing, so there is nothing to close.
      const connection = await resolved.catch(() => undefined);
      await connection?.close();
    },
  };
}
