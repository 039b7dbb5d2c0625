/**
 * Waits until `check` returns a value other than `undefined` or `false`, checking every
 * `intervalMs` (25), for at most `timeoutMs`; returns the value. A bounded wait for an event
 * (docs/testing.md, "Timing"): it returns as soon as the event happens, and on timeout throws
 * naming `what` it waited for.
 */
export async function waitUntil<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs, what, intervalMs = 25 }: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
