// Errors of pod resolution. Each carries the container waiting reason and the event the
// kubelet would show for the same problem, so the core can report it the kubelet's way.
import { VkError } from '../errors.ts';
import type { VkErrorCode } from '../errors.ts';

export interface PodConfigErrorDetails {
  /** Waiting reason for the affected container(s), e.g. 'CreateContainerConfigError'. */
  reason: string;
  /** Reason of the Warning event the kubelet records: 'Failed' for container config, 'FailedMount' for volumes. */
  eventReason?: string;
  containerName?: string;
  volumeName?: string;
}

/** The pod cannot be started as written (VK_POD_CONFIG); it stays Pending until the spec or its inputs change. */
export class PodConfigError extends VkError {
  readonly reason: string;
  readonly eventReason: string;
  readonly containerName: string | undefined;
  readonly volumeName: string | undefined;
  constructor(message: string, details: PodConfigErrorDetails, code: VkErrorCode = 'VK_POD_CONFIG') {
    super(code, message);
    this.reason = details.reason;
    this.eventReason = details.eventReason ?? (details.volumeName !== undefined ? 'FailedMount' : 'Failed');
    this.containerName = details.containerName;
    this.volumeName = details.volumeName;
  }
}

export type ReferenceKind = 'ConfigMap' | 'Secret';

/**
 * A required ConfigMap, Secret or key is absent. From env/envFrom the kubelet reports
 * CreateContainerConfigError; from a volume the mount fails and the container stays
 * ContainerCreating (event FailedMount). Both retry once the object appears.
 */
export class MissingReferenceError extends PodConfigError {
  readonly kind: ReferenceKind;
  readonly objectName: string;
  readonly key: string | undefined;
  constructor(message: string, ref: { kind: ReferenceKind; objectName: string; key?: string; containerName?: string; volumeName?: string }) {
    super(message, {
      reason: ref.volumeName !== undefined ? 'ContainerCreating' : 'CreateContainerConfigError',
      containerName: ref.containerName,
      volumeName: ref.volumeName,
    });
    this.kind = ref.kind;
    this.objectName = ref.objectName;
    this.key = ref.key;
  }
}

export type UnsupportedReason = 'UnsupportedVolume' | 'UnsupportedField' | 'InvalidVolumePath';

/** The pod uses something a virtual kubelet cannot provide (hostPath, PVC, fileKeyRef, ...): the node rejects it (VK_POD_REJECTED). */
export class UnsupportedPodSpecError extends PodConfigError {
  constructor(reason: UnsupportedReason, message: string, where: { containerName?: string; volumeName?: string } = {}) {
    super(message, { reason, ...where }, 'VK_POD_REJECTED');
  }
}
