// The sandbox provider's images: references, a registry client, a content-addressed store,
// pull policy, and the merge of image config with a container spec.
export { ImagePullError, InvalidImageNameError, type ImagePullReason } from './errors.ts';
export { parseImageReference, familiarName, type ImageReference } from './reference.ts';
export { type Credential } from './auth.ts';
export { credentialsForImage, keyringsFromPullSecrets, DockerKeyring } from './credentials.ts';
export { RegistryClient, type RegistryClientOptions, type ResolvedImage } from './registry-client.ts';
export { ImageStore, type ImageStoreOptions, type PullOptions, type StoredImage, type EnsureResult } from './store.ts';
export { decidePull, defaultPullPolicy, type PullPolicy, type PullDecision } from './pull-policy.ts';
export { containerProcess, mergeEnv, parseImageUser, ContainerConfigError, type ContainerProcess, type UserSpec } from './container-config.ts';
export { resolveUser, UserResolveError, type ResolvedUser } from './user.ts';
export { hostPlatform, formatPlatform, parsePlatform } from './platform.ts';
export { type CloneMode } from './rootfs.ts';
export { type ImageRuntimeConfig, type Platform } from './manifest.ts';
