// Command simple-uml-guest is the entrypoint of simple-uml's container images (build/ociimage): it
// boots the guest the image holds as an instance (build/instance) in /var/lib/simple-uml, with its
// console also on standard output, until the container is stopped. `simple-uml-guest ready` exits 0
// once the guest is ready, and prints its state: a readiness probe.
package main

import (
	"fmt"
	"os"

	"github.com/simple-uml/simple-uml/build/instance"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "ready" {
		st, ready := instance.Ready(instance.ContainerStateDir)
		fmt.Println(st.Phase)
		if !ready {
			os.Exit(1)
		}
		return
	}
	os.Exit(instance.ContainerMain(os.Stdout))
}
