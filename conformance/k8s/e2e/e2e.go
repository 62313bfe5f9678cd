// Package e2e pins the Kubernetes end-to-end suite (k8s.io/kubernetes/test/e2e) at the control
// plane's release; conformance/k8s/build.ts compiles its test binary with `go test -c`.
package e2e

import (
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/e2e/common"
	_ "k8s.io/kubernetes/test/e2e/node"
)
