// Command vdo-csi-hostpath is the storage driver beneath the real node's CSI path: the one part
// of it no one publishes for this machine (kubernetes-csi's csi-driver-host-path and
// node-driver-registrar are not served here). Everything Velero talks to stays upstream: the
// snapshot controller, csi-snapshotter, csi-provisioner and the kubelet's CSI volume plugin.
//
// One process serves the CSI Identity, Controller and Node services on one socket, and the
// kubelet's plugin registration on a second one in <kubelet root>/plugins_registry. A volume is a
// folder, a snapshot a real copy of its bytes, a volume made from a snapshot a copy back, and
// NodePublishVolume a bind mount: so a data mover reads and writes real data.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type options struct {
	name        string
	endpoint    string
	registryDir string
	root        string
	nodeID      string
	topologyKey string
}

func main() {
	var o options
	flag.StringVar(&o.name, "driver-name", "hostpath.csi.vdo.local", "the CSI driver's name")
	flag.StringVar(&o.endpoint, "endpoint", "", "path of the CSI socket to serve")
	flag.StringVar(&o.registryDir, "plugins-registry", "", "the kubelet's plugins_registry folder ('' registers nothing)")
	flag.StringVar(&o.root, "root", "", "folder holding volumes/ and snapshots/")
	flag.StringVar(&o.nodeID, "node-id", "", "the node's name")
	flag.StringVar(&o.topologyKey, "topology-key", "topology.hostpath.csi.vdo.local/node", "the topology key the node reports")
	flag.Parse()
	if o.endpoint == "" || o.root == "" || o.nodeID == "" {
		log.Fatal("--endpoint, --root and --node-id are required")
	}
	store, err := newStore(o.root)
	if err != nil {
		log.Fatalf("store: %v", err)
	}
	d := &driver{opts: o, store: store}
	csiServer := serve(o.endpoint, func(s *grpc.Server) {
		csi.RegisterIdentityServer(s, d)
		csi.RegisterControllerServer(s, d)
		csi.RegisterNodeServer(s, d)
	})
	var regServer *grpc.Server
	if o.registryDir != "" {
		regSocket := filepath.Join(o.registryDir, o.name+"-reg.sock")
		regServer = serve(regSocket, func(s *grpc.Server) {
			registration.RegisterRegistrationServer(s, &registrar{name: o.name, endpoint: o.endpoint})
		})
	}
	log.Printf("%s serving on %s (node %s, data in %s)", o.name, o.endpoint, o.nodeID, o.root)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	// The registration socket goes first: the kubelet deregisters the driver when it disappears.
	if regServer != nil {
		regServer.Stop()
	}
	csiServer.Stop()
}

// serve listens on a fresh unix socket and serves the services register adds, in the background.
func serve(socket string, register func(*grpc.Server)) *grpc.Server {
	if err := os.MkdirAll(filepath.Dir(socket), 0o750); err != nil {
		log.Fatalf("socket folder: %v", err)
	}
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		log.Fatalf("listen on %s: %v", socket, err)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	register(s)
	go func() {
		if err := s.Serve(l); err != nil {
			log.Printf("serving %s: %v", socket, err)
		}
	}()
	return s
}
