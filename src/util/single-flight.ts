// Concurrent callers asking for the same key share one call in flight; once it settles, the
// next caller starts a new one (nothing is cached, failures included).
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  /** Joins the call for `key` in flight, or starts `call`. */
  run(key: string, call: () => Promise<T>): Promise<T> {
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = call().finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }
}
