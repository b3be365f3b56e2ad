package instance

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
)

// Where a container image's instance is (build/ociimage lays the image out so).
const (
	ContainerGuestDir = "/opt/simple-uml"                 // read-only: the kernel, the image and the spec
	ContainerSpec     = ContainerGuestDir + "/spec.json"  //
	ContainerStateDir = "/var/lib/simple-uml"             // the instance's folder, writable: mount a volume here to keep the guest's disk
	ContainerCOW      = ContainerStateDir + "/" + cowFile //
	// ContainerTempDir holds UML's memory file: writable and not noexec (a container's /dev/shm is
	// noexec), and not on the state volume, where the guest's memory would be written to disk.
	ContainerTempDir = "/tmp/simple-uml"
)

// imageIDFile records, in a container's state folder, the digest of the image its COW file was made over.
const imageIDFile = "image.sha256"

// ContainerMain is a container image's entrypoint: it makes the image's instance folder of its spec
// and supervises the spec (never the folder's copy: the folder is a volume others may write), with
// the console also on out, until the container is stopped (SIGTERM). The instance does not restart
// its guest itself: the container's engine does, and counts it.
func ContainerMain(out io.Writer) int {
	var spec Spec
	err := files.ReadJSON(ContainerSpec, &spec)
	if err == nil {
		err = prepareContainer(ContainerStateDir, spec)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "simple-uml-guest: %v\n", err)
		return 1
	}
	status := superviseMain(ContainerStateDir, &spec, out)
	// A guest that crashed ends the container with a failure, for the engine's restart policy.
	if st := readState(ContainerStateDir); status == 0 && st.Phase == PhaseCrashed {
		fmt.Fprintf(os.Stderr, "simple-uml-guest: the guest crashed: %s\n", st.Reason)
		return 1
	}
	return status
}

// prepareContainer makes dir the folder of the image's instance: no link or odd file where the
// supervisor and the kernel write, and a disk made over this image's root filesystem.
func prepareContainer(dir string, spec Spec) error {
	if err := checkStateFiles(dir); err != nil {
		return err
	}
	if err := Adopt(dir, spec); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w (the folder must be writable by the image's user, uid %d)", err, os.Getuid())
		}
		return err
	}
	if err := matchDisk(dir, spec.ImageSHA256); err != nil {
		return err
	}
	return os.MkdirAll(ContainerTempDir, 0o700)
}

// checkStateFiles refuses a state folder whose files are links or not files: the kernel's sandbox
// would follow a link named guest.cow to its target, and a FIFO blocks whoever opens it.
func checkStateFiles(dir string) error {
	for _, name := range []string{cowFile, tokenFile, lockFile, specFile, stateFile, consoleFile, imageIDFile} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s): remove it; whoever writes this folder owns the guest", filepath.Join(dir, name), fi.Mode().Type())
		}
	}
	return nil
}

// matchDisk refuses a COW file made over another root filesystem image than the one whose digest is
// want, and records want for a new one.
func matchDisk(dir, want string) error {
	if want == "" {
		return nil
	}
	id := filepath.Join(dir, imageIDFile)
	if !files.Exists(filepath.Join(dir, cowFile)) {
		return files.WriteBytes(id, []byte(want+"\n"), 0o600)
	}
	data, err := os.ReadFile(id)
	if got := strings.TrimSpace(string(data)); err != nil || got != want {
		if got == "" {
			got = "not recorded"
		}
		return fmt.Errorf("the guest's disk %s was made over another root filesystem image (sha256 %s) than this image's (%s): run the image that made it, or remove %s to start this one afresh", filepath.Join(dir, cowFile), got, want, cowFile)
	}
	return nil
}

// Adopt makes dir the folder of the instance spec describes, whose kernel and image are files kept
// elsewhere (a container image's, read-only): it writes the spec (for ps and logs), and a console
// token when it has none.
func Adopt(dir string, spec Spec) error {
	if err := ident.Name("instance name", spec.Name); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeSpecAndToken(dir, spec)
}

// Ready is the state of the instance in dir, and whether its supervisor runs and its guest is ready
// (a container's readiness probe).
func Ready(dir string) (State, bool) {
	st := readState(dir)
	return st, running(dir) && st.Phase == PhaseReady
}
