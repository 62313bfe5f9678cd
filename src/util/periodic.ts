/** Runs `task` every `intervalMs`, skipping a tick while the previous run is still going. Returns the timer to clear. */
export function every(intervalMs: number, task: () => Promise<void>, onError: (err: unknown) => void): NodeJS.Timeout {
  let running = false;
  return setInterval(() => {
    if (running) return;
    running = true;
    task()
      .catch(onError)
      .finally(() => (running = false));
  }, intervalMs);
}
