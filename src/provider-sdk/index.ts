// The provider SDK: implement Provider (src/providers/provider.ts) in TypeScript, then
//
//   import { serveProvider } from 'virtual-kubelet-ts/src/provider-sdk/index.ts';
//   const server = await serveProvider(myProvider, { port: 9443, token: process.env.TOKEN });
//
// and run the virtual kubelet with `--provider remote` and `{ endpoint: http://host:9443, token }`.
// Throw NotFoundError for unknown pods and UnsupportedError for what the backend cannot do; any
// other error reaches the core as a provider failure with its message.
export { serveProvider, type ProviderServer, type ProviderServerTls, type ServeProviderOptions } from './server.ts';
export { NotFoundError, UnsupportedError, VkError } from '../errors.ts';
export type { ExecStreams, LogOptions, NodeConfig, PodListener, PodStats, Provider, ResolvedPod, ResolvedVolume, TerminalSize, VolumeFile } from '../providers/provider.ts';
export { PROTOCOL_VERSION, VERSION_HEADER } from '../providers/remote/protocol.ts';
