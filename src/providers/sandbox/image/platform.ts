// The platform this process runs on in OCI terms, and picking its manifest from an index
// the way containerd's platform matcher does (os and architecture equal; variant equal, or
// a lower arm variant the host can also run; an absent variant means the default one).
import type { Descriptor, ImageIndex, Platform } from './manifest.ts';

const NODE_ARCH_TO_OCI: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le', // Node on Linux ppc64 is little-endian
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The host platform: linux/<arch>[/<variant>] from process.arch (and the ARM version Node was built for). */
export function hostPlatform(): Platform {
  const architecture = NODE_ARCH_TO_OCI[process.arch] ?? process.arch;
  const platform: Platform = { os: 'linux', architecture };
  if (architecture === 'arm64') platform.variant = 'v8';
  if (architecture === 'arm') {
    const version = (process.config.variables as unknown as Record<string, unknown>).arm_version;
    platform.variant = `v${typeof version === 'string' || typeof version === 'number' ? version : '7'}`;
  }
  return platform;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Parses os/arch[/variant]. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined || variant === '') throw new Error(`invalid platform "${text}" (want os/arch[/variant])`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function defaultVariant(architecture: string): string | undefined {
  if (architecture === 'arm64') return 'v8';
  if (architecture === 'arm') return 'v7';
  return undefined;
}

/** The variants a host of `want` can run, best first (arm v7 runs v6 and v5). */
function compatibleVariants(want: Platform): (string | undefined)[] {
  const variant = want.variant ?? defaultVariant(want.architecture);
  if (want.architecture === 'arm' && variant) {
    const n = Number(variant.slice(1));
    const lower = [];
    for (let v = n; v >= 5; v--) lower.push(`v${v}`);
    return lower;
  }
  return [variant];
}

/**
 * The index entry for `want`, or undefined. Entries without a platform and attestation
 * manifests (platform unknown/unknown) never match.
 */
export function selectPlatformManifest(index: ImageIndex, want: Platform): Descriptor | undefined {
  const variants = compatibleVariants(want);
  let best: { descriptor: Descriptor; rank: number } | undefined;
  for (const descriptor of index.manifests) {
    const p = descriptor.platform;
    if (!p || p.os !== want.os || p.architecture !== want.architecture) continue;
    const variant = p.variant ?? defaultVariant(p.architecture);
    const rank = variants.indexOf(variant);
    if (rank === -1) continue;
    if (!best || rank < best.rank) best = { descriptor, rank };
  }
  return best?.descriptor;
}
