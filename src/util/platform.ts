// The machine's platform in Kubernetes' terms (kubernetes.io/arch uses GOARCH names).

/** Node's process.arch names mapped to the GOARCH names Kubernetes uses in kubernetes.io/arch. */
const GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc64: 'ppc64le', // Node reports little-endian ppc64 as 'ppc64'; Kubernetes only ships ppc64le
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

export function goArch(nodeArch: string = process.arch): string {
  return GO_ARCH[nodeArch] ?? nodeArch;
}
