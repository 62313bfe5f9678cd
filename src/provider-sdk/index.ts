// The provider SDK: implement Provider (src/providers/provider.ts) in TypeScript, then
//
//   import { serveProvider } from 'virtual-kubelet-ts/src/provider-sdk/index.ts';
//   const server = await serveProvider(myProvider, { port: 9443, token: process.env.TOKEN });
//
// and run the virtual kubelet with `--provider remote` and `{ endpoint: http://host:9443, token }`.
// Throw the errors of the Provider contract (NotFoundError for unknown pods, PodRejectedError for
// a spec that can never run, ProviderUnavailableError, TryLaterError, UnsupportedError, ...): the
// client rebuilds the same class, so the core handles them as if the provider ran in-process.
// Any other error reaches the core as a provider failure with its message.
export { serveProvider, type ProviderServer, type ProviderServerTls, type ServeProviderOptions } from './server.ts';
export {
  AbortedError,
  ContainerStateError,
  NotFoundError,
  PodRejectedError,
  ProviderUnavailableError,
  TryLaterError,
  UnsupportedError,
  VkError,
} from '../errors.ts';
export type {
  CallOptions,
  DeleteOptions,
  DeleteReason,
  ExecStreams,
  LogOptions,
  NodeConfig,
  PodListener,
  PodStats,
  Provider,
  ResolvedPod,
  ResolvedVolume,
  TerminalSize,
  VolumeFile,
} from '../providers/provider.ts';
export { PROTOCOL_VERSION, PROTOCOL_VERSIONS, VERSION_HEADER } from '../protocol/wire.ts';
