package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// clusterInfo is written to <dir>/cluster.json once every component is ready;
// the TypeScript harness and `vk up` read it.
type clusterInfo struct {
	Version string `json:"version"`
	Server  string `json:"server"`
	// AdvertiseAddress is where pods reach kube-apiserver (the kubernetes Service's endpoint), at Ports["kube-apiserver"].
	AdvertiseAddress string            `json:"advertiseAddress"`
	Kubeconfig       string            `json:"kubeconfig"`
	Etcd             string            `json:"etcd"`
	LogDir           string            `json:"logDir"`
	PKIDir           string            `json:"pkiDir"`
	Pid              int               `json:"pid"`
	Ports            map[string]int    `json:"ports"`
	Logs             map[string]string `json:"logs"`
}

type upOptions struct {
	dir              string
	apiserverPort    int
	exitWithStdin    bool
	fsync            bool
	verifyKubeletTLS bool
	serviceCIDR      string
	advertiseAddress string
	restart          bool
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	var o upOptions
	fs.StringVar(&o.dir, "dir", "", "state directory (PKI, etcd data, logs, kubeconfigs); reused when it exists")
	fs.IntVar(&o.apiserverPort, "apiserver-port", 0, "kube-apiserver secure port on 127.0.0.1 (0 picks a free one)")
	fs.BoolVar(&o.exitWithStdin, "exit-with-stdin", false, "shut down when standard input closes (the parent process died)")
	fs.BoolVar(&o.fsync, "etcd-fsync", false, "let etcd fsync (off by default: a throwaway cluster favours speed)")
	fs.BoolVar(&o.verifyKubeletTLS, "verify-kubelet-serving-certs", false, "make kube-apiserver verify kubelet serving certificates against the cluster CA")
	fs.StringVar(&o.serviceCIDR, "service-cluster-ip-range", "10.96.0.0/16", "service cluster IP range")
	fs.BoolVar(&o.restart, "restart-components", true,
		"once the control plane is ready, start kube-apiserver, kube-scheduler or kube-controller-manager again (same arguments and port, after a short backoff) when it exits on its own; false: stop the whole control plane instead")
	fs.StringVar(&o.advertiseAddress, "advertise-address", "127.0.0.1",
		"address of this host (not loopback) where pods reach kube-apiserver, on the same port as 127.0.0.1; it becomes the kubernetes Service's endpoint")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.dir == "" {
		fmt.Fprintln(os.Stderr, "vk-cluster up: --dir is required")
		return 2
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vk-cluster up: --dir: %v\n", err)
		return 2
	}
	o.dir = dir
	if ip := net.ParseIP(o.advertiseAddress); ip == nil || ip.To4() == nil || ip.IsUnspecified() {
		fmt.Fprintf(os.Stderr, "vk-cluster up: --advertise-address %q: want one IPv4 address of this host\n", o.advertiseAddress)
		return 2
	}
	s := &supervisor{opts: o, started: time.Now(), exited: make(chan string, 4), quit: make(chan struct{})}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if o.exitWithStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}
	err = s.run(ctx)
	s.shutdown()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vk-cluster up: %v\n", err)
		return 1
	}
	return 0
}

type supervisor struct {
	opts     upOptions
	started  time.Time
	etcd     *embed.Etcd
	mu       sync.Mutex
	children []*child
	exited   chan string
	stopping bool
	// ready: start-up is over; from then on a component that exits is restarted (opts.restart).
	ready bool
	// quit is closed when shutdown begins: a restart waiting out its backoff gives up.
	quit  chan struct{}
	relay *tcpForwarder
}

type child struct {
	name    string
	args    []string
	logDir  string
	health  healthCheck
	started time.Time
	policy  *restartPolicy
	cmd     *exec.Cmd
	done    chan struct{}
}

// healthCheck is where a component says it serves (kube-apiserver's readyz, the others' healthz).
type healthCheck struct {
	endpoint string
	tls      *tls.Config
}

func (s *supervisor) progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "vk-cluster: [%5.1fs] %s\n", time.Since(s.started).Seconds(), fmt.Sprintf(format, a...))
}

func (s *supervisor) run(ctx context.Context) error {
	o := s.opts
	p := pki{dir: filepath.Join(o.dir, "pki")}
	logDir := filepath.Join(o.dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	_, serviceNet, err := net.ParseCIDR(o.serviceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cluster-ip-range: %v", err)
	}
	serviceIP := make(net.IP, len(serviceNet.IP))
	copy(serviceIP, serviceNet.IP)
	serviceIP[len(serviceIP)-1]++
	advertise := net.ParseIP(o.advertiseAddress)
	loopbackOnly := advertise.IsLoopback()
	if _, err := os.Stat(p.path("ca.crt")); errors.Is(err, os.ErrNotExist) {
		if err := p.generate(serviceIP, advertise); err != nil {
			return fmt.Errorf("generating PKI: %w", err)
		}
		s.progress("generated PKI in %s", p.dir)
	}
	if added, err := p.ensureAggregationPKI(); err != nil {
		return fmt.Errorf("front-proxy and metrics-server certificates: %w", err)
	} else if added {
		s.progress("issued front-proxy and metrics-server certificates in %s", p.dir)
	}
	if !loopbackOnly {
		// A reused state directory: its certificate may predate this address.
		reissued, err := p.ensureServingIP(serviceIP, advertise)
		if err != nil {
			return fmt.Errorf("kube-apiserver serving certificate for %s: %w", advertise, err)
		}
		if reissued {
			s.progress("kube-apiserver serving certificate now names %s", advertise)
		}
	}

	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	if o.apiserverPort != 0 {
		if err := checkPortFree(o.apiserverPort); err != nil {
			return fmt.Errorf("--apiserver-port %d: %v", o.apiserverPort, err)
		}
		ports[0] = o.apiserverPort
	}
	apiPort, etcdClientPort, etcdPeerPort, schedPort, kcmPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	if !loopbackOnly {
		// Listening before kube-apiserver starts: an address that is not on this host fails here, at once.
		relay, err := startForwarder(net.JoinHostPort(o.advertiseAddress, strconv.Itoa(apiPort)), fmt.Sprintf("127.0.0.1:%d", apiPort))
		if err != nil {
			return fmt.Errorf("--advertise-address %s: %w", o.advertiseAddress, err)
		}
		s.relay = relay
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort)

	if err := s.startEtcd(filepath.Join(o.dir, "etcd"), etcdClientPort, etcdPeerPort, filepath.Join(logDir, "etcd.log")); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	s.progress("etcd ready on %s", etcdURL)

	kubeconfigs := map[string]string{}
	for _, name := range []string{"admin", "kube-scheduler", "kube-controller-manager"} {
		path := filepath.Join(o.dir, name+".kubeconfig")
		if err := p.writeKubeconfig(path, server, name); err != nil {
			return err
		}
		kubeconfigs[name] = path
	}

	apiArgs := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=" + o.advertiseAddress, "--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(o.dir, "apiserver-certs"),
		"--tls-cert-file=" + p.path("apiserver.crt"), "--tls-private-key-file=" + p.path("apiserver.key"),
		"--client-ca-file=" + p.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + p.path("sa.pub"), "--service-account-signing-key-file=" + p.path("sa.key"),
		"--service-cluster-ip-range=" + o.serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		"--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate=" + p.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + p.path("apiserver-kubelet-client.key"),
		// Virtual nodes publish an InternalIP (127.0.0.1 or vk up's own address) and their own kubelet port.
		"--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
		"--profiling=false",
		// The aggregation layer (metrics.k8s.io from metrics-server): kube-apiserver authenticates
		// to aggregated API servers as front-proxy-client and passes the user in X-Remote-* headers.
		"--requestheader-client-ca-file=" + p.path("front-proxy-ca.crt"),
		"--requestheader-allowed-names=" + frontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.path("front-proxy-client.crt"),
		"--proxy-client-key-file=" + p.path("front-proxy-client.key"),
		// To an APIService's EndpointSlice address, not its ClusterIP: no kube-proxy runs on this host.
		"--enable-aggregator-routing=true",
	}
	if loopbackOnly {
		// The kubernetes Service cannot have a loopback endpoint; without a reconciler it keeps its ClusterIP only.
		apiArgs = append(apiArgs, "--endpoint-reconciler-type=none")
	} else {
		// The lease reconciler (upstream's default) publishes the advertise address and secure port.
		apiArgs = append(apiArgs, "--endpoint-reconciler-type=lease")
	}
	if o.verifyKubeletTLS {
		apiArgs = append(apiArgs, "--kubelet-certificate-authority="+p.path("ca.crt"))
	}
	tlsConfig, err := adminTLS(p)
	if err != nil {
		return err
	}
	if err := s.spawn("kube-apiserver", apiArgs, logDir, healthCheck{server + "/readyz", tlsConfig}); err != nil {
		return err
	}
	if err := s.waitHealthy(ctx, "kube-apiserver", server+"/readyz", tlsConfig, 3*time.Minute); err != nil {
		return err
	}
	s.progress("kube-apiserver ready on %s", server)
	if !loopbackOnly {
		advertised := "https://" + net.JoinHostPort(o.advertiseAddress, strconv.Itoa(apiPort))
		// Through the relay and checked against the serving certificate's new IP SAN.
		if err := s.waitHealthy(ctx, "kube-apiserver", advertised+"/readyz", tlsConfig, 30*time.Second); err != nil {
			return fmt.Errorf("at the advertise address: %w", err)
		}
		s.progress("kube-apiserver also reachable at %s", advertised)
	}

	componentAuth := func(kubeconfig string, port int) []string {
		return []string{
			"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port),
			"--cert-dir=" + filepath.Join(o.dir, "serving-certs"), "--profiling=false",
			// Leader election stays on (their Leases are what tools look at), with a renew deadline
			// long enough that a restart of kube-apiserver alone (5-20 s) does not make them exit:
			// with the default 10 s they did, on nearly every restart.
			"--leader-elect=true", "--leader-elect-lease-duration=60s", "--leader-elect-renew-deadline=40s", "--leader-elect-retry-period=2s",
		}
	}
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // loopback health probe of a self-signed component
	healthz := func(port int) healthCheck {
		return healthCheck{fmt.Sprintf("https://127.0.0.1:%d/healthz", port), insecure}
	}
	if err := s.spawn("kube-scheduler", componentAuth(kubeconfigs["kube-scheduler"], schedPort), logDir, healthz(schedPort)); err != nil {
		return err
	}
	kcmArgs := append(componentAuth(kubeconfigs["kube-controller-manager"], kcmPort),
		"--service-account-private-key-file="+p.path("sa.key"),
		"--root-ca-file="+p.path("ca.crt"),
		"--use-service-account-credentials=true",
		"--cluster-signing-cert-file="+p.path("ca.crt"), "--cluster-signing-key-file="+p.path("ca.key"),
		"--service-cluster-ip-range="+o.serviceCIDR,
	)
	if err := s.spawn("kube-controller-manager", kcmArgs, logDir, healthz(kcmPort)); err != nil {
		return err
	}
	for name, port := range map[string]int{"kube-scheduler": schedPort, "kube-controller-manager": kcmPort} {
		if err := s.waitHealthy(ctx, name, healthz(port).endpoint, insecure, 2*time.Minute); err != nil {
			return err
		}
		s.progress("%s healthy on port %d", name, port)
	}

	info := clusterInfo{
		Version: kubernetesVersion, Server: server, AdvertiseAddress: o.advertiseAddress, Kubeconfig: kubeconfigs["admin"], Etcd: etcdURL,
		LogDir: logDir, PKIDir: p.dir, Pid: os.Getpid(),
		Ports: map[string]int{"kube-apiserver": apiPort, "etcd": etcdClientPort, "kube-scheduler": schedPort, "kube-controller-manager": kcmPort},
		Logs:  map[string]string{},
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"} {
		info.Logs[name] = filepath.Join(logDir, name+".log")
	}
	infoPath := filepath.Join(o.dir, "cluster.json")
	data, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(infoPath, data, 0o644); err != nil {
		return err
	}
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.progress("control plane %s ready", kubernetesVersion)
	fmt.Printf("ready %s\n", infoPath)

	select {
	case <-ctx.Done():
		return nil
	case name := <-s.exited:
		return fmt.Errorf("%s exited unexpectedly; see %s", name, filepath.Join(logDir, name+".log"))
	case err := <-s.etcd.Err():
		return fmt.Errorf("etcd failed: %v", err)
	}
}

func (s *supervisor) startEtcd(dataDir string, clientPort, peerPort int, logFile string) error {
	cfg := embed.NewConfig()
	cfg.Name = "vk-cluster"
	cfg.Dir = dataDir
	clientURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	peerURL, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", peerPort))
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*clientURL}, []url.URL{*clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peerURL}, []url.URL{*peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = !s.opts.fsync
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{logFile}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	s.etcd = e
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("not ready after 60s; see %s", logFile)
	}
}

// spawn runs this same binary as one component, with its output in <logDir>/<name>.log.
func (s *supervisor) spawn(name string, args []string, logDir string, health healthCheck) error {
	return s.start(&child{name: name, args: args, logDir: logDir, health: health, policy: newRestartPolicy()}, os.O_TRUNC)
}

// start runs c (again: logMode os.O_APPEND keeps the log of the runs before) and watches its exit.
func (s *supervisor) start(c *child, logMode int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.logDir, c.name+".log"), os.O_CREATE|os.O_WRONLY|logMode, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(self, append([]string{c.name}, c.args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Children die with the supervisor even when it is killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	run := &child{name: c.name, args: c.args, logDir: c.logDir, health: c.health, policy: c.policy, cmd: cmd, done: make(chan struct{})}
	// Under the lock: shutdown, once it has taken the list of children, must not miss a restarted one.
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		logFile.Close()
		return fmt.Errorf("not starting %s: shutting down", c.name)
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		logFile.Close()
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	run.started = time.Now()
	replaced := false
	for i, old := range s.children {
		if old.name == c.name {
			s.children[i], replaced = run, true // same place: shutdown keeps its reverse start order
		}
	}
	if !replaced {
		s.children = append(s.children, run)
	}
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(run.done)
		s.mu.Lock()
		stopping, ready := s.stopping, s.ready
		s.mu.Unlock()
		switch {
		case stopping:
		case ready && s.opts.restart:
			s.restart(run)
		default:
			s.exited <- run.name
		}
	}()
	return nil
}

// restart starts a component that exited on its own again, after its backoff, and notes when it
// serves again; one that exits too often stops the control plane (s.exited) as without restarts.
func (s *supervisor) restart(c *child) {
	ran := time.Since(c.started)
	delay, ok := c.policy.next(time.Now(), ran)
	if !ok {
		s.progress("%s exited (%s) %d times within %s; not restarting it", c.name, c.cmd.ProcessState, c.policy.limit+1, c.policy.window)
		s.exited <- c.name
		return
	}
	s.progress("%s (pid %d) exited (%s) after %.1fs; restarting it in %s", c.name, c.cmd.Process.Pid, c.cmd.ProcessState, ran.Seconds(), delay)
	s.noteInLog(c, fmt.Sprintf("vk-cluster: %s exited (%s); restarting it in %s", c.name, c.cmd.ProcessState, delay))
	select {
	case <-s.quit:
		return
	case <-time.After(delay):
	}
	if err := s.start(c, os.O_APPEND); err != nil {
		s.progress("%v", err)
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if !stopping {
			s.exited <- c.name
		}
		return
	}
	restartedAt := time.Now()
	s.mu.Lock()
	var pid int
	for _, r := range s.children {
		if r.name == c.name {
			pid = r.cmd.Process.Pid
		}
	}
	s.mu.Unlock()
	s.progress("%s restarted (pid %d)", c.name, pid)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.health.tls}}
	defer client.CloseIdleConnections()
	for time.Since(restartedAt) < 3*time.Minute {
		if resp, err := client.Get(c.health.endpoint); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.progress("%s serves again, %.1fs after its restart", c.name, time.Since(restartedAt).Seconds())
				return
			}
		}
		select {
		case <-s.quit:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// noteInLog appends a line to the component's log, between the output of its runs.
func (s *supervisor) noteInLog(c *child, line string) {
	f, err := os.OpenFile(filepath.Join(c.logDir, c.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), line)
}

func (s *supervisor) waitHealthy(ctx context.Context, name, endpoint string, tlsConfig *tls.Config, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(endpoint)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while waiting for %s", name)
		case exited := <-s.exited:
			return fmt.Errorf("%s exited during start-up; see %s", exited, filepath.Join(s.opts.dir, "logs", exited+".log"))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not healthy after %s (last answer: %s); see %s", name, timeout, last, filepath.Join(s.opts.dir, "logs", name+".log"))
}

// shutdown stops components in reverse start order: SIGTERM, then SIGKILL after 10s.
func (s *supervisor) shutdown() {
	s.mu.Lock()
	if !s.stopping {
		close(s.quit)
	}
	s.stopping = true
	children := append([]*child(nil), s.children...)
	s.mu.Unlock()
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	if s.relay != nil {
		s.relay.close()
	}
	if s.etcd != nil {
		s.etcd.Close()
	}
}

func adminTLS(p pki) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(p.path("admin.crt"), p.path("admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}

func freePorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func checkPortFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port in use")
	}
	return l.Close()
}
