// A pod's /etc/resolv.conf as the kubelet forms it (pkg/kubelet/network/dns/dns.go, GetPodDNS) and
// containerd writes it: the policy picks a base (cluster DNS, the host's file, or nothing), the
// pod's dnsConfig is appended, and the result is cut to the resolver's limits with the kubelet's
// Warning event texts. Pure: the caller reads the host file and records the warnings as Events.
import type { Pod } from '../../kube/types.ts';

/** The parts of a resolv.conf the kubelet reads (other lines, e.g. `domain`, are ignored as it does). */
export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  /** `name` or `name:value`, in file order. */
  options: string[];
}

export interface PodDnsInput {
  /** The kubelet's --cluster-dns: addresses of the cluster DNS server; empty when none is known. */
  clusterDNS: readonly string[];
  /** --cluster-domain, e.g. `cluster.local`; '' for none. */
  clusterDomain: string;
  /** The parsed --resolv-conf file (the host's /etc/resolv.conf); undefined for --resolv-conf="". */
  host: ResolvConf | undefined;
}

export interface PodDnsWarning {
  /** The kubelet's Event reason: `MissingClusterDNS` or `DNSConfigForming`. */
  reason: 'MissingClusterDNS' | 'DNSConfigForming';
  message: string;
}

export interface PodResolvConf {
  config: ResolvConf;
  /** The file's text, as containerd writes it (search, nameserver, options lines). */
  text: string;
  /** Warning Events the kubelet would record on the pod. */
  warnings: PodDnsWarning[];
}

// api/core/validation: MaxDNSNameservers and the ExpandedDNSConfig limits (GA since 1.28).
const MAX_NAMESERVERS = 3;
const MAX_SEARCH_PATHS = 32;
const MAX_SEARCH_LIST_CHARS = 2048;
// glibc 2.28 aborts on a search path longer than this (DNS1123SubdomainMaxLength).
const MAX_SEARCH_PATH_LENGTH = 253;

/** resolv.conf lines as the kubelet reads them: nameservers accumulate, the last search and options lines win. */
export function parseResolvConf(text: string): ResolvConf {
  const parsed: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('#')) continue;
    const [keyword, ...fields] = trimmed.split(/\s+/);
    if (keyword === 'nameserver' && fields[0]) parsed.nameservers.push(fields[0]);
    // The same domain with and without a trailing dot counts once (the kubelet trims it too).
    else if (keyword === 'search') parsed.searches = fields.map((s) => s.replace(/\.$/, ''));
    else if (keyword === 'options') parsed.options = fields;
  }
  return parsed;
}

type DnsBase = 'cluster' | 'host' | 'none';

/** The kubelet's getPodDNSType: ClusterFirst on the host network behaves as Default. */
function dnsBase(pod: Pod): DnsBase {
  switch (pod.spec?.dnsPolicy ?? 'ClusterFirst') {
    case 'None':
      return 'none';
    case 'ClusterFirst':
      return pod.spec?.hostNetwork ? 'host' : 'cluster';
    case 'Default':
      return 'host';
    default:
      // ClusterFirstWithHostNet; kube-apiserver rejects other values, and the kubelet uses ClusterFirst for them.
      return 'cluster';
  }
}

/** The pod's DNS configuration, the resolv.conf text and the warnings, for any dnsPolicy and dnsConfig. */
export function podResolvConf(pod: Pod, input: PodDnsInput): PodResolvConf {
  const warnings: PodDnsWarning[] = [];
  const base = dnsBase(pod);
  let config: ResolvConf;
  if (base === 'none') {
    config = { nameservers: [], searches: [], options: [] };
  } else if (base === 'cluster' && input.clusterDNS.length > 0) {
    // The cluster DNS server is the only one: it forwards what it does not answer itself.
    config = {
      nameservers: [...input.clusterDNS],
      searches: clusterSearches(pod, input),
      options: ['ndots:5'],
    };
  } else {
    if (base === 'cluster') {
      warnings.push({
        reason: 'MissingClusterDNS',
        message:
          `pod: "${podRef(pod)}". kubelet does not have ClusterDNS IP configured and cannot create Pod using ` +
          `"ClusterFirst" policy. Falling back to "Default" policy.`,
      });
    }
    config = hostConfig(input.host);
  }

  const podConfig = pod.spec?.dnsConfig;
  if (podConfig) {
    config = {
      nameservers: unique([...config.nameservers, ...(podConfig.nameservers ?? [])]),
      searches: unique([...config.searches, ...(podConfig.searches ?? [])]),
      options: mergeOptions(config.options, podConfig.options ?? []),
    };
  }

  config.nameservers = fitNameservers(config.nameservers, warnings);
  config.searches = fitSearches(config.searches, warnings);
  return { config, text: formatResolvConf(config), warnings };
}

/** `<ns>.svc.<domain> svc.<domain> <domain>` before the host's own search domains. */
function clusterSearches(pod: Pod, input: PodDnsInput): string[] {
  const hostSearches = input.host?.searches ?? [];
  if (input.clusterDomain === '') return [...hostSearches];
  const namespace = pod.metadata?.namespace ?? 'default';
  const domain = input.clusterDomain;
  return unique([`${namespace}.svc.${domain}`, `svc.${domain}`, domain, ...hostSearches]);
}

function hostConfig(host: ResolvConf | undefined): ResolvConf {
  // --resolv-conf="": the kubelet gives the pod the local resolver and no search path.
  if (!host) return { nameservers: ['127.0.0.1'], searches: ['.'], options: [] };
  return { nameservers: [...host.nameservers], searches: [...host.searches], options: [...host.options] };
}

/** Options by name; the pod's value wins. Order: the base's, then new names (the kubelet's map has none). */
function mergeOptions(existing: readonly string[], podOptions: readonly { name?: string; value?: string }[]): string[] {
  const merged = new Map<string, string>();
  for (const option of existing) {
    const colon = option.indexOf(':');
    if (colon === -1) merged.set(option, '');
    else merged.set(option.slice(0, colon), option.slice(colon + 1));
  }
  for (const option of podOptions) merged.set(option.name ?? '', option.value ?? '');
  return [...merged].map(([name, value]) => (value === '' ? name : `${name}:${value}`));
}

function fitNameservers(nameservers: string[], warnings: PodDnsWarning[]): string[] {
  if (nameservers.length <= MAX_NAMESERVERS) return nameservers;
  const kept = nameservers.slice(0, MAX_NAMESERVERS);
  warnings.push({
    reason: 'DNSConfigForming',
    message: `Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: ${kept.join(' ')}`,
  });
  return kept;
}

function fitSearches(searches: string[], warnings: PodDnsWarning[]): string[] {
  let kept = searches.slice(0, MAX_SEARCH_PATHS).filter((s) => s.length <= MAX_SEARCH_PATH_LENGTH);
  let exceeded = kept.length !== searches.length;
  // Too long a line: drop domains from the end until it fits.
  while (kept.join(' ').length > MAX_SEARCH_LIST_CHARS) {
    kept = kept.slice(0, -1);
    exceeded = true;
  }
  if (exceeded) {
    warnings.push({
      reason: 'DNSConfigForming',
      message: `Search Line limits were exceeded, some search paths have been omitted, the applied search line is: ${kept.join(' ')}`,
    });
  }
  return kept;
}

/** resolv.conf text in containerd's layout; '' when there is nothing to write. */
export function formatResolvConf(config: ResolvConf): string {
  let text = '';
  if (config.searches.length > 0) text += `search ${config.searches.join(' ')}\n`;
  for (const server of config.nameservers) text += `nameserver ${server}\n`;
  if (config.options.length > 0) text += `options ${config.options.join(' ')}\n`;
  return text;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

function podRef(pod: Pod): string {
  return `${pod.metadata?.name ?? ''}_${pod.metadata?.namespace ?? ''}(${pod.metadata?.uid ?? ''})`;
}
