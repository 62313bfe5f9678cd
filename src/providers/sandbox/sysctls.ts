// The pod's securityContext.sysctls, set in its own namespaces as the kubelet's runtime does:
// the kernel.* (IPC, UTS) and net.* ones are per namespace, so writing them from inside the pause
// process's namespaces changes this pod only.
import { VkError } from '../../errors.ts';
import type { Sysctl } from '../../kube/types.ts';
import { run } from '../../util/command.ts';
import type { SandboxConfig } from './config.ts';

/** The kernel's dotted name: a name whose first separator is '/' has its '.' and '/' swapped (as the kubelet's ConvertSysctlVariableToDotsSeparator). */
export function dottedSysctlName(name: string): string {
  const first = /[./]/.exec(name)?.[0];
  if (first !== '/') return name;
  return name.replace(/[./]/g, (ch) => (ch === '/' ? '.' : '/'));
}

/** The `nsenter … busybox sysctl -w` command setting `sysctl` in the namespaces of process `pid`. */
export function sysctlCommand(tools: Pick<SandboxConfig['tools'], 'nsenter' | 'busybox'>, pid: number, sysctl: Sysctl): string[] {
  const ns = (kind: string) => `--${kind}=/proc/${pid}/ns/${kind}`;
  // /proc/sys shows the namespaces of the process that opens it: enter all the per-pod ones.
  return [tools.nsenter, ns('net'), ns('ipc'), ns('uts'), '--', tools.busybox, 'sysctl', '-w', `${dottedSysctlName(sysctl.name)}=${sysctl.value}`];
}

export async function applySysctls(tools: Pick<SandboxConfig['tools'], 'nsenter' | 'busybox'>, pid: number, sysctls: readonly Sysctl[]): Promise<void> {
  for (const sysctl of sysctls) {
    try {
      await run(sysctlCommand(tools, pid, sysctl));
    } catch (err) {
      throw new VkError('VK_PROVIDER', `cannot set sysctl ${sysctl.name}=${sysctl.value} in the pod's namespaces: ${(err as Error).message}`);
    }
  }
}
