/** Node fires any setTimeout longer than this (about 24.8 days) after 1 ms. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

export interface LongTimeout {
  clear(): void;
}

/** A timeout that waits its whole delay, re-arming past Node's timer limit (a 30-day eta). */
export function setLongTimeout(callback: () => void, delayMs: number): LongTimeout {
  const deadline = Date.now() + delayMs;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    const left = deadline - Date.now();
    timer =
      left > MAX_TIMER_DELAY_MS ? setTimeout(arm, MAX_TIMER_DELAY_MS) : setTimeout(callback, left);
  };
  arm();
  return { clear: () => clearTimeout(timer) };
}
