// Command upstream-vk runs one node of the upstream Go virtual-kubelet for the benchmark: the
// release's node/nodeutil library (node controller, pod controller, kubelet HTTP API: what its
// cmd/virtual-kubelet runs) with cmd/virtual-kubelet's settings (10 pod sync workers, 1 minute
// informer resync, virtual-kubelet.io/provider taint, no kubelet API auth without a CA) and an
// in-memory mock provider that behaves like the release's built-in one: CreatePod makes the pod
// Running at once and notifies; DeletePod marks it Succeeded with terminated containers and
// notifies.
//
// Why not cmd/virtual-kubelet itself: its built-in mock provider keeps pods in a map without a
// lock, and with its 10 workers it dies at a few hundred pods ("fatal error: concurrent map
// writes" in mock.(*MockProvider).CreatePod); and its client has client-go's default rate limit
// (5 QPS, burst 10), which --kube-api-qps reproduces when asked (default here: no limit, like
// ours and kwok).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig")
	nodeName := flag.String("nodename", "virtual-kubelet", "node name")
	podCapacity := flag.String("pod-capacity", "20", "pods capacity (the built-in mock's default is 20)")
	workers := flag.Int("pod-sync-workers", 10, "pod sync workers (cmd/virtual-kubelet's default)")
	resync := flag.Duration("full-resync-period", time.Minute, "informer resync (cmd/virtual-kubelet's default)")
	qps := flag.Float64("kube-api-qps", -1, "client QPS; -1: no client-side rate limit; 0: client-go's default 5")
	burst := flag.Int("kube-api-burst", 0, "client burst (0: client-go's default 10)")
	listen := flag.String("listen", "127.0.0.1:10250", "kubelet API address")
	certFile := flag.String("tls-cert-file", os.Getenv("APISERVER_CERT_LOCATION"), "kubelet API serving certificate")
	keyFile := flag.String("tls-key-file", os.Getenv("APISERVER_KEY_LOCATION"), "kubelet API serving key")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, *kubeconfig, *nodeName, *podCapacity, *workers, *resync, float32(*qps), *burst, *listen, *certFile, *keyFile); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "upstream-vk: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfig, nodeName, podCapacity string, workers int, resync time.Duration, qps float32, burst int, listen, certFile, keyFile string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = qps, burst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	_, port, _ := splitPort(listen)
	mux := http.NewServeMux()
	newProvider := func(pc nodeutil.ProviderConfig) (nodeutil.Provider, node.NodeProvider, error) {
		p := &mockProvider{pods: map[string]*corev1.Pod{}, capacity: podCapacity, port: port}
		p.configureNode(pc.Node)
		pc.Node.Status.NodeInfo.KubeletVersion = "v1.31.4-vk-v1.13.0"
		return p, nil, nil
	}
	n, err := nodeutil.NewNode(nodeName, newProvider, func(c *nodeutil.NodeConfig) error {
		c.Handler = mux
		c.InformerResyncPeriod = resync
		c.NodeSpec.Spec.Taints = append(c.NodeSpec.Spec.Taints, corev1.Taint{Key: "virtual-kubelet.io/provider", Value: "mock", Effect: corev1.TaintEffectNoSchedule})
		c.NodeSpec.Status.NodeInfo.Architecture = runtime.GOARCH
		c.NodeSpec.Status.NodeInfo.OperatingSystem = "linux"
		c.HTTPListenAddr = listen
		c.StreamCreationTimeout, c.StreamIdleTimeout = 30*time.Second, 30*time.Second
		c.DebugHTTP = true
		c.NumWorkers = workers
		return nil
	},
		nodeutil.WithClient(client),
		func(c *nodeutil.NodeConfig) error {
			c.Handler = api.InstrumentHandler(nodeutil.WithAuth(nodeutil.NoAuth(), c.Handler))
			return nil
		},
		nodeutil.WithTLSConfig(nodeutil.WithKeyPairFromPath(certFile, keyFile)),
		nodeutil.AttachProviderRoutes(mux),
	)
	if err != nil {
		return err
	}
	go n.Run(ctx) //nolint:errcheck
	if err := n.WaitReady(ctx, 0); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-n.Done():
		return n.Err()
	}
	<-n.Done()
	return nil
}

func splitPort(addr string) (string, int32, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			var p int32
			_, err := fmt.Sscanf(addr[i+1:], "%d", &p)
			return addr[:i], p, err
		}
	}
	return addr, 0, fmt.Errorf("no port in %q", addr)
}

// mockProvider keeps pods in memory, like the release's built-in mock, but behind a lock.
type mockProvider struct {
	mu       sync.Mutex
	pods     map[string]*corev1.Pod
	notifier func(*corev1.Pod)
	capacity string
	port     int32
}

func key(namespace, name string) string { return namespace + "/" + name }

func (p *mockProvider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	now := metav1.NewTime(time.Now())
	pod.Status = corev1.PodStatus{
		Phase:     corev1.PodRunning,
		HostIP:    "127.0.0.1",
		PodIP:     "10.244.0.2",
		StartTime: &now,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		},
	}
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	p.store(pod)
	return nil
}

func (p *mockProvider) UpdatePod(_ context.Context, pod *corev1.Pod) error {
	p.store(pod)
	return nil
}

// store keeps the pod and tells the pod controller, outside the lock (the notifier may call back).
func (p *mockProvider) store(pod *corev1.Pod) {
	p.mu.Lock()
	p.pods[key(pod.Namespace, pod.Name)] = pod
	notify := p.notifier
	p.mu.Unlock()
	notify(pod)
}

func (p *mockProvider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	k := key(pod.Namespace, pod.Name)
	if _, ok := p.pods[k]; !ok {
		p.mu.Unlock()
		return errdefs.NotFound("pod not found")
	}
	delete(p.pods, k)
	notify := p.notifier
	p.mu.Unlock()
	now := metav1.Now()
	pod.Status.Phase = corev1.PodSucceeded
	pod.Status.Reason = "MockProviderPodDeleted"
	for i := range pod.Status.ContainerStatuses {
		started := metav1.Time{}
		if r := pod.Status.ContainerStatuses[i].State.Running; r != nil {
			started = r.StartedAt
		}
		pod.Status.ContainerStatuses[i].Ready = false
		pod.Status.ContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			Message: "Mock provider terminated container upon deletion", FinishedAt: now, Reason: "MockProviderPodContainerDeleted", StartedAt: started,
		}}
	}
	notify(pod)
	return nil
}

func (p *mockProvider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pod, ok := p.pods[key(namespace, name)]; ok {
		return pod.DeepCopy(), nil
	}
	return nil, errdefs.NotFoundf("pod \"%s/%s\" is not known to the provider", namespace, name)
}

func (p *mockProvider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *mockProvider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*corev1.Pod, 0, len(p.pods))
	for _, pod := range p.pods {
		out = append(out, pod.DeepCopy())
	}
	return out, nil
}

func (p *mockProvider) NotifyPods(_ context.Context, notifier func(*corev1.Pod)) {
	p.mu.Lock()
	p.notifier = notifier
	p.mu.Unlock()
}

func (p *mockProvider) configureNode(n *corev1.Node) {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("20"),
		corev1.ResourceMemory: resource.MustParse("100Gi"),
		corev1.ResourcePods:   resource.MustParse(p.capacity),
	}
	now := metav1.Now()
	n.Status.Capacity, n.Status.Allocatable = capacity, capacity
	n.Status.Conditions = []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: now, LastTransitionTime: now, Reason: "KubeletReady", Message: "kubelet is ready."},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: now, LastTransitionTime: now, Reason: "KubeletHasSufficientMemory"},
		{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: now, LastTransitionTime: now, Reason: "KubeletHasNoDiskPressure"},
		{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: now, LastTransitionTime: now, Reason: "KubeletHasSufficientPID"},
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: p.port}}
	n.Status.NodeInfo.OperatingSystem = "linux"
	n.Status.NodeInfo.Architecture = "amd64"
}

func (p *mockProvider) GetContainerLogs(context.Context, string, string, string, api.ContainerLogOpts) (io.ReadCloser, error) {
	return io.NopCloser(nil), errdefs.NotFound("no logs in the mock")
}

func (p *mockProvider) RunInContainer(context.Context, string, string, string, []string, api.AttachIO) error {
	return errdefs.NotFound("no exec in the mock")
}

func (p *mockProvider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.NotFound("no attach in the mock")
}

func (p *mockProvider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{}, nil
}

func (p *mockProvider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}

func (p *mockProvider) PortForward(context.Context, string, string, int32, io.ReadWriteCloser) error {
	return errdefs.NotFound("no port-forward in the mock")
}
