// Command cert-manager-controller runs the cert-manager controllers a CA issuer needs, as one local
// process against the local control plane: no webhook, no pods, no leader election, no metrics server.
//
// It is payguard's own small main over the packages of the pinned github.com/cert-manager/cert-manager
// module (the proxy does not serve the nested cmd/controller module): the controllers themselves, their
// registration and their shared informers are upstream's, unchanged.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// Imported for their init(), which registers each controller or issuer type by name.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
)

// Everything a CA issuer needs; the approver can be left out (--controllers) so requests stay unapproved
// and a test can deny them itself, as an approval policy would.
const defaultControllers = "certificates-trigger,certificates-key-manager,certificates-request-manager," +
	"certificates-readiness,certificates-issuing,certificates-revision-manager," +
	"certificaterequests-approver,certificaterequests-issuer-ca,issuers,clusterissuers"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the API server")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace holding the Secrets of ClusterIssuers")
	controllers := flag.String("controllers", defaultControllers, "comma-separated controllers to run")
	healthz := flag.String("healthz-address", "127.0.0.1:0", "loopback address of /healthz (200 once caches sync)")
	klog.InitFlags(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, klog.Background(), "cert-manager-controller")

	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   50,
		KubernetesAPIBurst: 100,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: *clusterResourceNamespace},
		CertificateOptions: controllerpkg.CertificateOptions{
			// cert-manager's own defaults for a failed request's backoff.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
	})
	if err != nil {
		return err
	}

	known := controllerpkg.Known()
	var loops []controllerpkg.Interface
	for _, name := range strings.Split(*controllers, ",") {
		construct, ok := known[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("unknown controller %q; known: %s", name, knownNames(known))
		}
		loop, err := construct(factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		loops = append(loops, loop)
	}

	// The controllers registered their informers on the shared factories while being constructed:
	// start them only now, so each informer is started exactly once.
	shared, err := factory.Build("informers")
	if err != nil {
		return err
	}
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.Start(ctx.Done())

	var synced atomic.Bool
	if err := serveHealthz(ctx, *healthz, &synced); err != nil {
		return err
	}
	go func() {
		shared.SharedInformerFactory.WaitForCacheSync(ctx.Done())
		shared.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done())
		synced.Store(ctx.Err() == nil)
	}()

	var wg sync.WaitGroup
	errs := make(chan error, len(loops))
	for _, loop := range loops {
		wg.Go(func() { errs <- loop.Run(2, ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// serveHealthz answers 200 once the informer caches have synced, and prints the address it bound.
func serveHealthz(ctx context.Context, address string, synced *atomic.Bool) error {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "cert-manager-controller: healthz on http://%s/healthz\n", listener.Addr())
	server := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if synced.Load() {
				_, _ = w.Write([]byte("ok"))
				return
			}
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
		}),
	}
	go func() { _ = server.Serve(listener) }()
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	return nil
}

func knownNames(known map[string]controllerpkg.Constructor) string {
	names := make([]string, 0, len(known))
	for name := range known {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
