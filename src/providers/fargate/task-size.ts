// Fargate task sizes. A task's cpu and memory must be one of these combinations: the table is
// the documentation of RegisterTaskDefinitionRequest.cpu in the ECS service model (2014-11-13,
// botocore 1.29.27), also "Task CPU and memory" in the Amazon ECS Developer Guide (Linux,
// platform version 1.4.0). Pods are rounded UP to the smallest size that holds them.

/** CPU units (1024 = 1 vCPU) → valid memory sizes in MiB. */
export const FARGATE_SIZES: readonly { cpu: number; memory: readonly number[] }[] = [
  { cpu: 256, memory: [512, 1024, 2048] },
  { cpu: 512, memory: range(1024, 4096, 1024) },
  { cpu: 1024, memory: range(2048, 8192, 1024) },
  { cpu: 2048, memory: range(4096, 16384, 1024) },
  { cpu: 4096, memory: range(8192, 30720, 1024) },
  { cpu: 8192, memory: range(16384, 61440, 4096) },
  { cpu: 16384, memory: range(32768, 122880, 8192) },
];

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let m = from; m <= to; m += step) out.push(m);
  return out;
}

export const MAX_CPU_UNITS = 16384;
export const MAX_MEMORY_MIB = 122880;

/** The smallest Fargate size with at least `cpuUnits` and `memoryMiB`, or undefined when none is that large. */
export function roundUpTaskSize(cpuUnits: number, memoryMiB: number): { cpu: number; memory: number } | undefined {
  for (const size of FARGATE_SIZES) {
    if (size.cpu < cpuUnits) continue;
    const memory = size.memory.find((m) => m >= memoryMiB);
    if (memory !== undefined) return { cpu: size.cpu, memory };
  }
  return undefined;
}
