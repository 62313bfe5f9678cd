// A cap on our requests in flight to the target's API server: the core runs many pod workers,
// and a burst of creates must not flood the target (its own controllers' lease renewals queue
// behind them on a busy API server: a kube-controller-manager lost its leadership that way in
// the benchmark). Waiters are served in arrival order.
export class InFlightLimit {
  private readonly max: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(max: number) {
    this.max = max;
  }

  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await call();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
