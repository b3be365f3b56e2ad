package instance

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
)

// Where a container image's instance is (build/ociimage lays the image out so).
const (
	ContainerGuestDir = "/opt/simple-uml"                 // read-only: the kernel, the image and the spec
	ContainerSpec     = ContainerGuestDir + "/spec.json"  //
	ContainerStateDir = "/var/lib/simple-uml"             // the instance's folder, writable: mount a volume here to keep the guest's disk
	ContainerTempDir  = ContainerStateDir + "/tmp"        // UML's memory file: a container's /dev/shm is noexec
	ContainerCOW      = ContainerStateDir + "/" + cowFile //
)

// ContainerMain is a container image's entrypoint: it makes the image's instance folder of its spec
// and supervises it, with the console also on out, until the container is stopped (SIGTERM). The
// instance does not restart its guest itself: the container's engine does, and counts it.
func ContainerMain(out io.Writer) int {
	var spec Spec
	if err := files.ReadJSON(ContainerSpec, &spec); err != nil {
		fmt.Fprintf(os.Stderr, "simple-uml-guest: the image's instance spec: %v\n", err)
		return 1
	}
	err := Adopt(ContainerStateDir, spec)
	if err == nil {
		err = os.MkdirAll(ContainerTempDir, 0o700) // a volume mounted on the state folder hides the image's
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "simple-uml-guest: %s: %v (it must be writable by the image's user)\n", ContainerStateDir, err)
		return 1
	}
	status := SuperviseMain(ContainerStateDir, out)
	// A guest that crashed ends the container with a failure, for the engine's restart policy.
	if st := readState(ContainerStateDir); st.Phase == PhaseCrashed {
		fmt.Fprintf(os.Stderr, "simple-uml-guest: the guest crashed: %s\n", st.Reason)
		return 1
	}
	return status
}

// Adopt makes dir the folder of the instance spec describes, whose kernel and image are files kept
// elsewhere (a container image's, read-only): it writes the spec, and a console token once.
func Adopt(dir string, spec Spec) error {
	if err := ident.Name("instance name", spec.Name); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	spec.Options.Console = nil
	if err := files.WriteJSON(filepath.Join(dir, specFile), spec); err != nil {
		return err
	}
	token := filepath.Join(dir, tokenFile)
	if files.Exists(token) {
		return nil
	}
	return files.WriteBytes(token, []byte(newToken()+"\n"), 0o600)
}

// Ready is the state of the instance in dir, and whether its supervisor runs and its guest is ready
// (a container's readiness probe).
func Ready(dir string) (State, bool) {
	st := readState(dir)
	return st, running(dir) && st.Phase == PhaseReady
}
