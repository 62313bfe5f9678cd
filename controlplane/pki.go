package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the set of files a control plane needs, all under one directory.
type pki struct {
	dir string
}

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

type certSpec struct {
	name   string // file stem: <name>.crt, <name>.key
	cn     string
	orgs   []string
	usages []x509.ExtKeyUsage
	dns    []string
	ips    []net.IP
}

// servingIPs are the IP SANs of kube-apiserver's serving certificate.
func servingIPs(serviceIP, advertise net.IP) []net.IP {
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), serviceIP}
	if advertise != nil && !advertise.IsLoopback() {
		ips = append(ips, advertise)
	}
	return ips
}

var apiserverDNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}

// generate writes a cluster CA, leaf certificates and the service-account key pair; advertise
// (nil for none) is an extra IP SAN of kube-apiserver's serving certificate.
func (p pki) generate(serviceIP, advertise net.IP) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	caCert, caKey, err := p.newCA("ca", "vk-cluster-ca")
	if err != nil {
		return err
	}

	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	leaves := []certSpec{
		{name: "apiserver", cn: "kube-apiserver", usages: server, dns: apiserverDNSNames, ips: servingIPs(serviceIP, advertise)},
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}, usages: client},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usages: client},
		{name: "kube-scheduler", cn: "system:kube-scheduler", usages: client},
		{name: "kube-controller-manager", cn: "system:kube-controller-manager", usages: client},
	}
	for i, leaf := range leaves {
		if err := issueLeaf(p, leaf, big.NewInt(int64(i+2)), caCert, caKey); err != nil {
			return err
		}
	}

	// Service-account tokens are RS256 by default; keep RSA for the widest compatibility.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := writeKey(p.path("sa.key"), saKey); err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(p.path("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
}

// newCA writes a self-signed CA as <stem>.crt and <stem>.key.
func (p pki) newCA(stem, cn string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, writeCertAndKey(p.path(stem), der, key)
}

// Front-proxy names, as kubeadm's: kube-apiserver presents front-proxy-client (signed by its own
// CA) when it proxies to an aggregated API server, which trusts the X-Remote-* headers from it only.
const frontProxyClientName = "front-proxy-client"

// MetricsServerServingName is the DNS name kube-apiserver checks when it proxies to the
// metrics-server Service in kube-system (<service>.<namespace>.svc).
const metricsServerServingName = "metrics-server.kube-system.svc"

// ensureAggregationPKI adds what the aggregation layer and metrics-server need to a PKI, also to
// one generated before they existed: the front-proxy CA and client, and metrics-server's client
// (its identity towards kube-apiserver and kubelets) and serving certificates from the cluster CA.
func (p pki) ensureAggregationPKI() (added bool, err error) {
	if _, err := os.Stat(p.path("front-proxy-client.crt")); errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err := p.newCA("front-proxy-ca", "vk-cluster-front-proxy-ca")
		if err != nil {
			return false, err
		}
		leaf := certSpec{name: "front-proxy-client", cn: frontProxyClientName, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if err := issueLeaf(p, leaf, big.NewInt(2), caCert, caKey); err != nil {
			return false, err
		}
		added = true
	}
	leaves := []certSpec{
		{name: "metrics-server", cn: "system:metrics-server", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{name: "metrics-server-serving", cn: metricsServerServingName, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			dns: []string{metricsServerServingName, "metrics-server.kube-system.svc.cluster.local"}},
	}
	var caCert *x509.Certificate
	var caKey crypto.Signer
	for _, leaf := range leaves {
		if _, err := os.Stat(p.path(leaf.name + ".crt")); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if caCert == nil {
			if caCert, err = readCert(p.path("ca.crt")); err != nil {
				return false, err
			}
			if caKey, err = readKey(p.path("ca.key")); err != nil {
				return false, err
			}
		}
		if err := issueLeaf(p, leaf, big.NewInt(time.Now().UnixNano()), caCert, caKey); err != nil {
			return false, err
		}
		added = true
	}
	return added, nil
}

func issueLeaf(p pki, leaf certSpec, serial *big.Int, caCert *x509.Certificate, caKey crypto.Signer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: leaf.cn, Organization: leaf.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  leaf.usages,
		DNSNames:     leaf.dns,
		IPAddresses:  leaf.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", leaf.name, err)
	}
	return writeCertAndKey(p.path(leaf.name), der, key)
}

// ensureServingIP reissues kube-apiserver's serving certificate (same CA) when a state directory
// is reused with an advertise address the certificate does not name yet. The new certificate
// names the base addresses and this one: a later run with another address reissues it again.
func (p pki) ensureServingIP(serviceIP, ip net.IP) (reissued bool, err error) {
	current, err := readCert(p.path("apiserver.crt"))
	if err != nil {
		return false, err
	}
	for _, have := range current.IPAddresses {
		if have.Equal(ip) {
			return false, nil
		}
	}
	caCert, err := readCert(p.path("ca.crt"))
	if err != nil {
		return false, err
	}
	caKey, err := readKey(p.path("ca.key"))
	if err != nil {
		return false, err
	}
	// A fresh serial: clients that cached the old certificate must not see two with one serial.
	serial := new(big.Int).Add(current.SerialNumber, big.NewInt(time.Now().UnixNano()))
	leaf := certSpec{name: "apiserver", cn: "kube-apiserver", usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		dns: apiserverDNSNames, ips: servingIPs(serviceIP, ip)}
	return true, issueLeaf(p, leaf, serial, caCert, caKey)
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return signer, nil
}

func writeCertAndKey(stem string, der []byte, key crypto.Signer) error {
	if err := os.WriteFile(stem+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return writeKey(stem+".key", key)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeKubeconfig writes a kubeconfig that authenticates with the named client certificate.
func (p pki) writeKubeconfig(path, server, certName string) error {
	content := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: vk-cluster
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: vk-cluster
  context:
    cluster: vk-cluster
    user: %s
current-context: vk-cluster
`, server, p.path("ca.crt"), certName, p.path(certName+".crt"), p.path(certName+".key"), certName)
	return os.WriteFile(path, []byte(content), 0o600)
}
