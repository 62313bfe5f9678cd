// Many virtual nodes in one process: `--nodes N` names them from the node-name template ("{i}"
// is the index; without it "-{i}" is appended), or the config file's `nodes` list gives each its
// own name, provider config, labels, taints and kubelet port. The result is one NodeSettings per
// node, each validated like a single node's.
import { ConfigError } from '../errors.ts';
import { validateNodeSettings, type NodeEntry, type NodeSettings } from './options.ts';

function nameFor(template: string, index: number, count: number): string {
  if (template.includes('{i}')) return template.replaceAll('{i}', String(index));
  return count === 1 ? template : `${template}-${index}`;
}

/** A fixed kubelet port is spread over the nodes (port + index); 0 stays 0 (any free port each). */
function portFor(base: number, index: number): number {
  return base === 0 ? 0 : base + index;
}

export function expandNodes(settings: NodeSettings): NodeSettings[] {
  const { nodes, ...shared } = settings;
  const entries: NodeEntry[] =
    nodes === undefined || typeof nodes === 'number'
      ? Array.from({ length: nodes ?? 1 }, (_, i) => ({ nodeName: nameFor(settings.nodeName, i, nodes ?? 1) }))
      : nodes;
  if (entries.length > 1 && settings.metricsAddr)
    throw new ConfigError('--metrics-addr serves one node; with several nodes each serves /metrics on its kubelet port (series labelled node)');
  const seen = new Set<string>();
  return entries.map((entry, index) => {
    const source = typeof nodes === 'object' ? `nodes[${index}]` : `--nodes (node ${index})`;
    if (seen.has(entry.nodeName)) throw new ConfigError(`${source}: nodeName ${entry.nodeName} is used twice`);
    seen.add(entry.nodeName);
    const node = validateNodeSettings(
      {
        ...shared,
        nodeName: entry.nodeName,
        providerConfig: entry.providerConfig ?? shared.providerConfig,
        labels: { ...shared.labels, ...entry.labels },
        taints: entry.taints ?? shared.taints,
        kubeletPort: entry.kubeletPort ?? portFor(shared.kubeletPort, index),
      },
      source,
    );
    if (node.nodeName.includes('{i}')) throw new ConfigError(`${source}: nodeName: "{i}" is only for --nodes N`);
    return node;
  });
}
