// Command simple-uml-guest is the entrypoint of simple-uml's container images (build/ociimage): it
// boots the guest the image holds as an instance (build/instance) in /var/lib/simple-uml, with its
// console also on standard output, until the container is stopped. `simple-uml-guest ready` exits 0
// once the guest is ready, and prints its state: a readiness probe. `simple-uml-guest console`
// attaches to the guest's console (`kubectl exec -it <pod> -- simple-uml-guest console`); in a lab
// guest's container, `simple-uml-guest checks` says what the lab's checks of its guest found.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/simple-uml/simple-uml/build/instance"
)

func main() {
	switch {
	case len(os.Args) == 1:
		os.Exit(instance.ContainerMain(os.Stdout))
	case len(os.Args) == 2 && os.Args[1] == "console":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer stop()
		if err := instance.ContainerConsole(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "simple-uml-guest: %v\n", err)
			os.Exit(1)
		}
	case len(os.Args) == 2 && os.Args[1] == "checks":
		os.Exit(instance.ContainerChecks(os.Stdout))
	case len(os.Args) == 2 && os.Args[1] == "ready":
		st, ready := instance.Ready(instance.ContainerStateDir)
		fmt.Println(st.Phase)
		if !ready {
			os.Exit(1)
		}
	default:
		// A command given to the container (podman run IMAGE sh) is not run: say so.
		fmt.Fprintf(os.Stderr, "simple-uml-guest: unknown arguments %q\nusage: simple-uml-guest (boot the image's guest), simple-uml-guest ready (exit 0 once it is ready), simple-uml-guest console (attach to its console; Ctrl-] leaves), or simple-uml-guest checks (what a lab's checks of its guest found)\n", os.Args[1:])
		os.Exit(2)
	}
}
