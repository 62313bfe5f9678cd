// `vk cost --compare-vm`: from how many hours of running a day a workload of a given size costs
// less on a VM that is paid for around the clock than on a virtual node's per-second prices.
import { ConfigError } from '../errors.ts';
import { billedResources, ratePerSecond, type BilledResources } from './charge.ts';
import type { PriceTable } from './prices.ts';

export interface VmOffer {
  vcpu: number;
  gib: number;
  pricePerHour: number;
}

export interface BreakEven {
  billed: BilledResources;
  /** What the workload costs per hour of running on the virtual node (start price and minimum charge aside). */
  podPerHour: number;
  vmPerDay: number;
  /** Hours of running a day above which the VM is cheaper; undefined when it never is (more than 24). */
  hoursPerDay: number | undefined;
  /** How many such workloads fit on the VM (0: it does not fit). */
  fits: number;
}

/** Parses `<vcpu>,<GiB>` or, with price, `<vcpu>,<GiB>,<price/hour>`; `flag` names it in errors. */
export function parseSizeList(text: string, flag: string, count: 2 | 3): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const names = ['vcpu', 'GiB', 'price/hour'].slice(0, count);
  if (parts.length !== count)
    throw new ConfigError(`${flag}: expected ${names.join(',')} (e.g. ${count === 3 ? '2,4,0.0464' : '1,2'}), got ${JSON.stringify(text)}`);
  return parts.map((p, i) => {
    const n = Number(p);
    if (p === '' || !Number.isFinite(n) || n < 0 || (i < 2 && n === 0))
      throw new ConfigError(`${flag}: ${names[i]}: expected a positive number, got ${JSON.stringify(p)}`);
    return n;
  });
}

export function breakEven(workload: { vcpu: number; gib: number }, prices: PriceTable, vm: VmOffer): BreakEven {
  const billed = billedResources({ vcpu: workload.vcpu, gib: workload.gib, gpu: 0 }, prices);
  const podPerHour = ratePerSecond(billed, prices) * 3600;
  const vmPerDay = vm.pricePerHour * 24;
  const hours = podPerHour > 0 ? vmPerDay / podPerHour : Infinity;
  return {
    billed,
    podPerHour,
    vmPerDay,
    hoursPerDay: hours <= 24 ? hours : undefined,
    fits: Math.floor(Math.min(vm.vcpu / workload.vcpu, vm.gib / workload.gib)),
  };
}

const HOURS_PER_MONTH = 720;

export function renderBreakEven(workload: { vcpu: number; gib: number }, prices: PriceTable, vm: VmOffer, result: BreakEven): string {
  const c = prices.currency;
  const money = (n: number, digits = 4) => `${n.toFixed(digits)} ${c}`;
  const billedNote =
    result.billed.vcpu !== workload.vcpu || result.billed.gib !== workload.gib ? ` (billed as ${result.billed.vcpu} vCPU, ${result.billed.gib} GiB)` : '';
  const lines = [
    `workload: ${workload.vcpu} vCPU, ${workload.gib} GiB${billedNote} at ${prices.name} prices: ${money(result.podPerHour, 5)} an hour, ${money(result.podPerHour * HOURS_PER_MONTH)} for a 30-day month around the clock`,
    `VM: ${vm.vcpu} vCPU, ${vm.gib} GiB at ${money(vm.pricePerHour, 5)} an hour: ${money(result.vmPerDay)} a day, ${money(vm.pricePerHour * HOURS_PER_MONTH)} a 30-day month`,
  ];
  if (result.fits === 0) lines.push('break-even: none: the workload does not fit on that VM');
  else if (result.hoursPerDay === undefined) lines.push('break-even: none: the virtual node is cheaper even around the clock');
  else {
    lines.push(
      `break-even: ${result.hoursPerDay.toFixed(2)} hours a day: running longer than that each day, the workload is cheaper on the VM; shorter, on the virtual node`,
    );
    if (result.fits > 1)
      lines.push(
        `(the VM holds ${result.fits} such workloads: with all of them on it, it pays off from ${(result.hoursPerDay / result.fits).toFixed(2)} hours a day each)`,
      );
  }
  return `${lines.join('\n')}\n`;
}
