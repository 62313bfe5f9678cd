package main

import (
	"crypto/x509"
	"net"
	"testing"
)

// A state directory reused with a new advertise address gets a serving certificate that names it,
// signed by the same CA, keeping the loopback and service addresses.
func TestEnsureServingIPReissuesForANewAddress(t *testing.T) {
	p := pki{dir: t.TempDir()}
	serviceIP := net.ParseIP("10.96.0.1")
	if err := p.generate(serviceIP, nil); err != nil {
		t.Fatal(err)
	}
	ca, err := readCert(p.path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	verifies := func(ip string) bool {
		cert, err := readCert(p.path("apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: ip})
		return err == nil
	}
	if verifies("10.214.0.1") {
		t.Fatal("a certificate generated without an advertise address names 10.214.0.1")
	}

	for _, step := range []struct {
		ip       string
		reissued bool
	}{{"10.214.0.1", true}, {"10.214.0.1", false}, {"10.214.3.1", true}} {
		reissued, err := p.ensureServingIP(serviceIP, net.ParseIP(step.ip))
		if err != nil {
			t.Fatal(err)
		}
		if reissued != step.reissued {
			t.Fatalf("%s: reissued %v, want %v", step.ip, reissued, step.reissued)
		}
		for _, ip := range []string{step.ip, "127.0.0.1", "10.96.0.1"} {
			if !verifies(ip) {
				t.Fatalf("after %s: the serving certificate does not verify for %s", step.ip, ip)
			}
		}
	}
	if verifies("10.214.0.1") {
		t.Fatal("the certificate still names the previous advertise address")
	}
}

func TestGenerateNamesTheAdvertiseAddress(t *testing.T) {
	p := pki{dir: t.TempDir()}
	if err := p.generate(net.ParseIP("10.96.0.1"), net.ParseIP("10.214.7.1")); err != nil {
		t.Fatal(err)
	}
	reissued, err := p.ensureServingIP(net.ParseIP("10.96.0.1"), net.ParseIP("10.214.7.1"))
	if err != nil || reissued {
		t.Fatalf("reissued %v, err %v: a fresh PKI already names its advertise address", reissued, err)
	}
}

// A PKI from before the aggregation layer gets its front-proxy and metrics-server certificates once:
// the front-proxy client chains to its own CA, metrics-server's to the cluster CA.
func TestEnsureAggregationPKIAddsMissingCertificatesOnce(t *testing.T) {
	p := pki{dir: t.TempDir()}
	if err := p.generate(net.ParseIP("10.96.0.1"), nil); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		added, err := p.ensureAggregationPKI()
		if err != nil || added != want {
			t.Fatalf("call %d: added %v, err %v; want added %v", i+1, added, err, want)
		}
	}
	verify := func(leaf, ca, dnsName string, usage x509.ExtKeyUsage) {
		t.Helper()
		roots := x509.NewCertPool()
		caCert, err := readCert(p.path(ca + ".crt"))
		if err != nil {
			t.Fatal(err)
		}
		roots.AddCert(caCert)
		cert, err := readCert(p.path(leaf + ".crt"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: dnsName, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("%s against %s: %v", leaf, ca, err)
		}
	}
	verify("front-proxy-client", "front-proxy-ca", "", x509.ExtKeyUsageClientAuth)
	verify("metrics-server", "ca", "", x509.ExtKeyUsageClientAuth)
	verify("metrics-server-serving", "ca", metricsServerServingName, x509.ExtKeyUsageServerAuth)
	if cert, _ := readCert(p.path("metrics-server.crt")); cert.Subject.CommonName != "system:metrics-server" {
		t.Fatalf("metrics-server client CN %q", cert.Subject.CommonName)
	}
}
