//go:build tools

// The test images built from the same module (conformance/k8s/images.ts); the build tag keeps
// these main packages out of the e2e package while `go mod tidy` records their dependencies.
package e2e

import (
	_ "k8s.io/kubernetes/test/images/agnhost"
	_ "k8s.io/kubernetes/test/images/nonewprivs"
)
