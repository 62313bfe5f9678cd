// The `vk run` flags of a local test node: kubelet API on 127.0.0.1, any free port, no auth, a
// self-signed serving certificate (the benchmark, the chaos suite and e2e tests start vk so).
export function localKubeletApiArgs(): string[] {
  return ['--node-ip', '127.0.0.1', '--kubelet-port', '0', '--kubelet-address', '127.0.0.1', '--kubelet-auth', 'none', '--kubelet-serving-cert', 'self-signed'];
}
