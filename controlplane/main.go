// Command vk-cluster is a multi-call binary: kube-apiserver, kube-controller-manager,
// kube-scheduler and kubectl of one pinned Kubernetes release, plus "up", which
// generates a PKI and runs a whole control plane (embedded etcd + the three
// components as child processes) on loopback, and with --advertise-address also at an
// address of this host that pods reach (a relay to the loopback port).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if _, ok := components[name]; !ok && name != "kubectl" {
		if len(args) == 0 {
			usage()
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	os.Args = append([]string{name}, args...)
	switch name {
	case "up":
		os.Exit(runUp(args))
	case "kubectl":
		// Same start-up as upstream cmd/kubectl: verbosity before command construction.
		logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
		if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
	default:
		newCommand, ok := components[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "vk-cluster: unknown command %q\n", name)
			usage()
			os.Exit(2)
		}
		os.Exit(cli.Run(newCommand()))
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vk-cluster up --dir DIR | kube-apiserver|kube-controller-manager|kube-scheduler|kubectl [args...]")
}

// kubernetesVersion is set at link time from go.mod's k8s.io/kubernetes requirement.
var kubernetesVersion = "unknown"
