// Command benchtool is the Go side of the benchmark suite (bench/):
//
//	benchtool ceiling --kubeconfig K --nodes a,b   the physical limit: registers the nodes, watches their
//	                                               pods and only writes each pod's status Running (and the
//	                                               final delete once a pod is deleted), as fast as
//	                                               kube-apiserver accepts, with no client-side rate limit
//	benchtool load --kubeconfig K --action create  the loader: creates (or deletes) N pods bound to the
//	                                               nodes with spec.nodeName, with C requests in flight
//	benchtool mkcert --ca-dir pki --cn NAME        a client/serving certificate signed by the cluster CA,
//	                                               so each peer gets its own identity in kube-apiserver
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool ceiling|load|mkcert [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ceiling":
		err = runCeiling(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	case "mkcert":
		err = runMkcert(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func clientFor(kubeconfig, userAgent string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS = -1 // no client-side rate limit: as fast as kube-apiserver accepts
	cfg.UserAgent = userAgent
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return kubernetes.NewForConfig(cfg)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ---------------------------------------------------------------- ceiling

func runCeiling(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	nodes := fs.String("nodes", "bench-node", "comma-separated node names to register and serve")
	workers := fs.Int("workers", 32, "status writes in flight")
	podCapacity := fs.String("pod-capacity", "20000", "pods capacity of each node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := clientFor(*kubeconfig, "bench-ceiling")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	names := splitList(*nodes)
	for _, name := range names {
		if err := registerNode(ctx, client, name, *podCapacity); err != nil {
			return fmt.Errorf("registering node %s: %w", name, err)
		}
	}
	go renewLeases(ctx, client, names)

	queue := workqueue.NewTyped[string]()
	var written, deleted atomic.Int64
	var done sync.Map // "run/<uid>" and "del/<uid>": handled once
	enqueue := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		uid := string(pod.UID)
		key := pod.Namespace + "/" + pod.Name + "/" + uid
		if pod.DeletionTimestamp != nil {
			if _, seen := done.LoadOrStore("del/"+uid, true); !seen {
				queue.Add("del/" + key)
			}
			return
		}
		if pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "" {
			if _, seen := done.LoadOrStore("run/"+uid, true); !seen {
				queue.Add("run/" + key)
			}
		}
	}
	var informers []cache.SharedIndexInformer
	for _, name := range names {
		selector := fields.OneTermEqualSelector("spec.nodeName", name).String()
		lw := cache.NewFilteredListWatchFromClient(client.CoreV1().RESTClient(), "pods", metav1.NamespaceAll, func(o *metav1.ListOptions) { o.FieldSelector = selector })
		inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, obj any) { enqueue(obj) }})
		go inf.Run(ctx.Done())
		informers = append(informers, inf)
	}
	for _, inf := range informers {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return errors.New("informer did not sync")
		}
	}
	var ip atomic.Uint32
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				item, shutdown := queue.Get()
				if shutdown {
					return
				}
				parts := strings.SplitN(item, "/", 4) // action, namespace, name, uid
				action, ns, name, uid := parts[0], parts[1], parts[2], parts[3]
				var err error
				if action == "run" {
					err = writeRunning(ctx, client, ns, name, uid, ip.Add(1))
					if err == nil {
						written.Add(1)
					}
				} else {
					u := types.UID(uid)
					zero := int64(0)
					err = client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &u}})
					if err == nil {
						deleted.Add(1)
					}
				}
				if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "ceiling: %s %s/%s: %v\n", action, ns, name, err)
				}
				queue.Done(item)
			}
		}()
	}
	fmt.Println("ready")
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	fmt.Fprintf(os.Stderr, "ceiling: wrote %d Running statuses, deleted %d pods\n", written.Load(), deleted.Load())
	return nil
}

// writeRunning sends the status a virtual kubelet writes when a pod's containers run, as one
// merge patch of pods/status with the UID as precondition.
func writeRunning(ctx context.Context, client *kubernetes.Clientset, ns, name, uid string, ipIndex uint32) error {
	now := metav1.Now().UTC().Format(time.RFC3339)
	podIP := fmt.Sprintf("10.%d.%d.%d", 244+(ipIndex>>16)&7, (ipIndex>>8)&255, ipIndex&255)
	cond := func(t string) map[string]any {
		return map[string]any{"type": t, "status": "True", "lastTransitionTime": now}
	}
	patch := map[string]any{
		"metadata": map[string]any{"uid": uid},
		"status": map[string]any{
			"phase":      "Running",
			"conditions": []any{cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"), cond("ContainersReady"), cond("PodScheduled")},
			"hostIP":     "127.0.0.1",
			"hostIPs":    []any{map[string]any{"ip": "127.0.0.1"}},
			"podIP":      podIP,
			"podIPs":     []any{map[string]any{"ip": podIP}},
			"startTime":  now,
			"containerStatuses": []any{map[string]any{
				"name": "app", "image": "registry.invalid/bench:1", "imageID": "", "containerID": "ceiling://" + uid,
				"ready": true, "started": true, "restartCount": 0,
				"state": map[string]any{"running": map[string]any{"startedAt": now}},
			}},
		},
	}
	body, _ := json.Marshal(patch)
	_, err := client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	return err
}

func registerNode(ctx context.Context, client *kubernetes.Clientset, name, podCapacity string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("20"),
		corev1.ResourceMemory:           resource.MustParse("100Gi"),
		corev1.ResourcePods:             resource.MustParse(podCapacity),
		corev1.ResourceEphemeralStorage: resource.MustParse("1Ti"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"type": "virtual-kubelet", "kubernetes.io/role": "agent", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
		}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: "virtual-kubelet.io/provider", Value: "ceiling", Effect: corev1.TaintEffectNoSchedule}}},
	}
	_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		err = nil
	}
	if err != nil {
		return err
	}
	// kube-controller-manager may touch a new Node (taints) between our create and status write.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		current.Status = corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "ceiling", LastHeartbeatTime: now, LastTransitionTime: now}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
			NodeInfo:   corev1.NodeSystemInfo{OperatingSystem: "linux", Architecture: "amd64", KubeletVersion: "v0.0.0-ceiling"},
		}
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
}

// renewLeases keeps the nodes healthy for the node lifecycle controller: one Lease per node,
// renewed every 10 s by a loop of its own (as each kubelet's lease controller), starts spread over
// the first 10 s, each renewal one Update of the Lease it last wrote (a Get only after a failure).
// One serial loop over all nodes, as before, took ~75 s per round at 1,000 nodes under load: longer
// than the Leases' 40 s, so those nodes went unhealthy and the ceiling did less work than a kubelet.
func renewLeases(ctx context.Context, client *kubernetes.Clientset, names []string) {
	for i, name := range names {
		go renewLease(ctx, client, name, time.Duration(i)*leaseRenewInterval/time.Duration(len(names)))
	}
}

const leaseRenewInterval = 10 * time.Second

func renewLease(ctx context.Context, client *kubernetes.Clientset, name string, delay time.Duration) {
	duration := int32(40)
	leases := client.CoordinationV1().Leases("kube-node-lease")
	var lease *coordinationv1.Lease
	wait := delay
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = leaseRenewInterval
		now := metav1.NewMicroTime(time.Now())
		var err error
		if lease == nil {
			lease, err = leases.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				lease, err = leases.Create(ctx, &coordinationv1.Lease{
					ObjectMeta: metav1.ObjectMeta{Name: name},
					Spec:       coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &duration, RenewTime: &now},
				}, metav1.CreateOptions{})
				if err == nil {
					continue
				}
			}
		}
		if err == nil {
			renewed := lease.DeepCopy()
			renewed.Spec.RenewTime = &now
			lease, err = leases.Update(ctx, renewed, metav1.UpdateOptions{})
		}
		if err != nil {
			lease = nil
			if ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "ceiling: lease %s: %v\n", name, err)
			}
		}
	}
}

// ---------------------------------------------------------------- load

func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig")
	action := fs.String("action", "create", "create or delete")
	namespace := fs.String("namespace", "bench", "namespace")
	prefix := fs.String("prefix", "bench", "pod name prefix: <prefix>-<index>")
	count := fs.Int("count", 100, "pods")
	nodes := fs.String("nodes", "bench-node", "comma-separated nodes; pod i is bound to node i mod len")
	concurrency := fs.Int("concurrency", 16, "requests in flight")
	rate := fs.Float64("rate", 0, "pods/s offered on a fixed schedule (open loop); 0: as fast as kube-apiserver takes them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 0 {
		return fmt.Errorf("--rate %v: must be 0 or more", *rate)
	}
	client, err := clientFor(*kubeconfig, "bench-loader")
	if err != nil {
		return err
	}
	names := splitList(*nodes)
	ctx := context.Background()
	indexes := make(chan int)
	var failures atomic.Int64
	var firstErr atomic.Value
	started := time.Now()
	var wg sync.WaitGroup
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range indexes {
				name := fmt.Sprintf("%s-%06d", *prefix, i)
				var err error
				for attempt := 0; attempt < 5; attempt++ {
					if *action == "create" {
						_, err = client.CoreV1().Pods(*namespace).Create(ctx, benchPod(name, names[i%len(names)]), metav1.CreateOptions{})
						if apierrors.IsAlreadyExists(err) {
							err = nil
						}
					} else {
						err = client.CoreV1().Pods(*namespace).Delete(ctx, name, metav1.DeleteOptions{})
						if apierrors.IsNotFound(err) {
							err = nil
						}
					}
					if err == nil || !(apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsTimeout(err)) {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	for i := range *count {
		if *rate > 0 {
			// Request i is due at started + i/rate, however long the earlier ones took: every peer gets the same offered load.
			time.Sleep(time.Until(started.Add(time.Duration(float64(i) / *rate * float64(time.Second)))))
		}
		indexes <- i
	}
	close(indexes)
	wg.Wait()
	result := map[string]any{"action": *action, "count": *count, "failures": failures.Load(), "seconds": time.Since(started).Seconds()}
	if e := firstErr.Load(); e != nil {
		result["firstError"] = e
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	if failures.Load() > 0 {
		return fmt.Errorf("%d of %d requests failed", failures.Load(), *count)
	}
	return nil
}

// benchPod is the pod every peer runs: one container, no service-account token, no service
// links, so the figures measure the pod lifecycle itself, not reference resolution.
func benchPod(name, node string) *corev1.Pod {
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench"}},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			AutomountServiceAccountToken: &no,
			EnableServiceLinks:           &no,
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.invalid/bench:1"}},
			Tolerations: []corev1.Toleration{
				{Key: "virtual-kubelet.io/provider", Operator: corev1.TolerationOpExists},
				{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists},
			},
		},
	}
}

// ---------------------------------------------------------------- mkcert

func runMkcert(args []string) error {
	fs := flag.NewFlagSet("mkcert", flag.ContinueOnError)
	caDir := fs.String("ca-dir", "", "directory with ca.crt and ca.key (the control plane's pki/)")
	cn := fs.String("cn", "", "common name (the user name)")
	org := fs.String("org", "", "organization (the group)")
	out := fs.String("out", "", "output stem: <out>.crt and <out>.key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *caDir == "" || *cn == "" || *out == "" {
		return errors.New("--ca-dir, --cn and --out are required")
	}
	caCertPEM, err := os.ReadFile(filepath.Join(*caDir, "ca.crt"))
	if err != nil {
		return err
	}
	caKeyPEM, err := os.ReadFile(filepath.Join(*caDir, "ca.key"))
	if err != nil {
		return err
	}
	certBlock, _ := pem.Decode(caCertPEM)
	keyBlock, _ := pem.Decode(caKeyPEM)
	if certBlock == nil || keyBlock == nil {
		return errors.New("ca.crt or ca.key is not PEM")
	}
	caCert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return err
	}
	caKey, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	subject := pkix.Name{CommonName: *cn}
	if *org != "" {
		subject.Organization = []string{*org}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(*out+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}
