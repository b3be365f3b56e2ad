package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/ui"
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

// The environment of a lab guest's container (build/kube writes it): the lab, and which of its
// guests this container boots.
const (
	LabVar      = "SUML_LAB"       // the lab, as JSON (lab.Decode)
	LabGuestVar = "SUML_LAB_GUEST" // the guest of it this container boots
)

// containerForwards is where a container's forwards listen: its every address, its network
// namespace its own, so that `podman run -p` and a Kubernetes Service reach them. A forward is a
// door the image's maker opened (boot.forward); the container's engine decides who reaches it.
const containerForwards = "0.0.0.0"

// LabWorkload is the name of the workload (and the Service) of a lab's guest on Kubernetes: its
// peers find its pod by this name.
func LabWorkload(labName, guest string) string { return labName + "-" + guest }

// imageIDFile records, in a container's state folder, the digest of the image its COW file was made over.
const imageIDFile = "image.sha256"

// ContainerMain is a container image's entrypoint: it makes the image's instance folder of its spec
// and supervises the spec (never the folder's copy: the folder is a volume others may write), with
// the console also on out, until the container is stopped (SIGTERM). The instance does not restart
// its guest itself: the container's engine does, and counts it.
func ContainerMain(out io.Writer) int {
	var spec Spec
	err := files.ReadJSON(ContainerSpec, &spec)
	if guest := os.Getenv(LabGuestVar); err == nil && guest != "" {
		spec, err = labGuestSpec(spec, os.Getenv(LabVar), guest)
	}
	os.Unsetenv(LabVar) // the guest's kernel inherits this environment
	os.Unsetenv(LabGuestVar)
	if err == nil && spec.Options.Net != nil {
		spec.Options.Net.ForwardAddress = containerForwards
	}
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

// ContainerConsole attaches in/out to the console of the guest this container runs, until Ctrl-]
// or the end of in: `kubectl exec -it <pod> -- simple-uml-guest console`. A lab guest's console is
// logged in as root, as the lab leaves it.
func ContainerConsole(ctx context.Context, in *os.File, out io.Writer) error {
	if guest := os.Getenv(LabGuestVar); guest != "" {
		var spec Spec
		err := files.ReadJSON(ContainerSpec, &spec)
		if err == nil {
			spec, err = labGuestSpec(spec, os.Getenv(LabVar), guest)
		}
		if err != nil {
			return err
		}
		return lab.AttachGuest(ctx, ContainerStateDir, spec.Lab, guest, in, out)
	}
	return Console(ctx, ContainerStateDir, in, out)
}

// ContainerChecks writes what the lab's checks of this container's guest found (checkLab) and
// returns the exit status of `simple-uml-guest checks`: 0 when they all passed (or the guest has
// none), 1 when one failed, 2 while they are still being tried.
func ContainerChecks(out io.Writer) int {
	guest := os.Getenv(LabGuestVar)
	if guest == "" {
		fmt.Fprintln(out, "this container's guest is of no lab: it has no checks")
		return 0
	}
	var spec Spec
	err := files.ReadJSON(ContainerSpec, &spec)
	if err == nil {
		spec, err = labGuestSpec(spec, os.Getenv(LabVar), guest)
	}
	if err != nil {
		fmt.Fprintf(out, "simple-uml-guest: %v\n", err)
		return 1
	}
	if !slices.ContainsFunc(spec.Lab.Checks, func(c lab.Check) bool { return c.Guest == guest }) {
		fmt.Fprintf(out, "lab %s has no check in guest %s\n", spec.Lab.Name, guest)
		return 0
	}
	st := readState(ContainerStateDir)
	if len(st.Checks) == 0 {
		fmt.Fprintf(out, "the checks of guest %s are still being tried (phase %s)\n", guest, st.Phase)
		return 2
	}
	status := 0
	for _, c := range st.Checks {
		word := "ok  "
		if !c.OK {
			word, status = "FAIL", 1
		}
		fmt.Fprintf(out, "%s %s: %s\n", word, c.Name, ui.Visible(c.Detail))
	}
	return status
}

// labGuestSpec is the image's spec as guest of the lab given as JSON: it boots the image's root
// filesystem, configured as the lab file says, and reaches the lab's other guests, each in a pod of
// its own, through the VXLAN tunnel.
func labGuestSpec(spec Spec, labJSON, guest string) (Spec, error) {
	l, err := lab.Decode([]byte(labJSON))
	if err != nil {
		return spec, fmt.Errorf("%s: %w", LabVar, err)
	}
	i := slices.IndexFunc(l.Guests, func(g lab.Guest) bool { return g.Name == guest })
	if i < 0 {
		return spec, fmt.Errorf("%s=%s: lab %s has no such guest (it has %s)", LabGuestVar, guest, l.Name, strings.Join(l.GuestNames(), ", "))
	}
	if l.Guests[i].Image != "" {
		return spec, fmt.Errorf("guest %s of lab %s boots the image file %s: in a container it boots the container image's root filesystem (give it a recipe instead)", guest, l.Name, l.Guests[i].Image)
	}
	spec.Name, spec.Lab, spec.LabGuest = LabWorkload(l.Name, guest), l, guest
	spec.Options.Net = nil // the lab file opens the guest's doors, not the image's boot.net
	spec.LabImages = map[string]lab.Image{guest: {Path: spec.Options.Image, RootPassword: spec.RootPassword}}
	return spec, nil
}

// prepareContainer makes dir the folder of the image's instance: no link or odd file where the
// supervisor and the kernel write, and a disk made over this image's root filesystem.
func prepareContainer(dir string, spec Spec) error {
	if err := checkStateFiles(dir, spec); err != nil {
		return err
	}
	if err := Adopt(dir, spec); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w (the folder must be writable by the image's user, uid %d)", err, os.Getuid())
		}
		return err
	}
	if err := matchDisk(dir, diskOf(dir, spec), spec.ImageSHA256); err != nil {
		return err
	}
	return os.MkdirAll(ContainerTempDir, 0o700)
}

// checkStateFiles refuses a state folder whose files are links or not files, or whose folders are
// links: the kernel's sandbox would follow a link named guest.cow to its target, and a FIFO blocks
// whoever opens it.
func checkStateFiles(dir string, spec Spec) error {
	regular := []string{cowFile, tokenFile, lockFile, specFile, stateFile, consoleFile, imageIDFile}
	var folders []string
	if spec.LabGuest != "" {
		regular = append(regular, filepath.Join(disksDir, spec.LabGuest, filepath.Base(diskOf(dir, spec))), lab.ConsolePath(logsDir, spec.LabGuest))
		folders = []string{disksDir, filepath.Join(disksDir, spec.LabGuest), logsDir, runsDir}
	}
	for _, name := range append(regular, folders...) {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if want := slices.Contains(folders, name); want && !fi.IsDir() || !want && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular %s (%s): remove it; whoever writes this folder owns the guest", filepath.Join(dir, name), map[bool]string{true: "folder", false: "file"}[want], fi.Mode().Type())
		}
	}
	return nil
}

// diskOf is the COW file of the guest the spec of the instance in dir boots.
func diskOf(dir string, spec Spec) string {
	if spec.LabGuest != "" {
		return lab.DiskPath(filepath.Join(dir, disksDir, spec.LabGuest))
	}
	return filepath.Join(dir, cowFile)
}

// matchDisk refuses a COW file (cow, in dir) made over another root filesystem image than the one
// whose digest is want, and records want for a new one.
func matchDisk(dir, cow, want string) error {
	if want == "" {
		return nil
	}
	id := filepath.Join(dir, imageIDFile)
	if !files.Exists(cow) {
		return files.WriteBytes(id, []byte(want+"\n"), 0o600)
	}
	data, err := os.ReadFile(id)
	if got := strings.TrimSpace(string(data)); err != nil || got != want {
		if got == "" {
			got = "not recorded"
		}
		return fmt.Errorf("the guest's disk %s was made over another root filesystem image (sha256 %s) than this image's (%s): run the image that made it, or remove it to start this one afresh", cow, got, want)
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
