// Package instance runs guests in the background, as named instances that outlive the command that
// started them: cheap virtual servers, sequestered services, honeypots.
//
// Each instance is a folder of its own under paths.state: what it boots (its spec, and its own copies
// of the kernel and the image, so that rebuilding dist/ changes no instance), its copy-on-write file
// (kept across stop and up, so that the guest's sshd keeps its host keys), its console log and its
// state. A supervisor, simple-uml's own, one process per instance, boots the guest, serves its
// console (build/console), writes its state and brings it back as its restart policy says. The state
// on disk and a lock the supervisor holds are what ps, stop, logs, console, reset and rm read from any
// shell. There is no systemd user unit: one supervisor of our own behaves the same on every host
// (containers, CI machines and hosts without a user manager alike), and it is what the tests run.
package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/uml"
)

// The files of an instance's folder.
const (
	specFile      = "spec.json"
	stateFile     = "state.json"
	lockFile      = "lock"
	kernelFile    = "linux"
	imageFile     = "image.ext4"
	cowFile       = "guest.cow"
	consoleFile   = "console.log"
	socketFile    = "console.sock"
	tokenFile     = "console.token"
	superviseFile = "supervisor.log"
	imagesDir     = "images"   // a lab instance's copies of its guests' images
	disksDir      = "disks"    // a lab instance's guests' COW files, a folder each
	runsDir       = "runs"     // a lab instance's run folders: its LAN captures
	logsDir       = "logs"     // a lab instance's guests' console logs, across runs
	programsDir   = "programs" // beside instances/: the supervisors' program, one copy per digest
)

// Restart says when the supervisor boots a guest that ended again.
type Restart string

const (
	RestartNo        Restart = "no"         // never: the instance stays exited or crashed
	RestartOnFailure Restart = "on-failure" // after a panic or a failed exit, not a power-off
	RestartAlways    Restart = "always"     // after any end but stop
)

// ParseRestart checks a restart policy's name.
func ParseRestart(s string) (Restart, error) {
	r := Restart(s)
	if !slices.Contains([]Restart{RestartNo, RestartOnFailure, RestartAlways}, r) {
		return "", fmt.Errorf("restart policy %q: want no, on-failure or always", s)
	}
	return r, nil
}

// again says whether a guest that ended in phase (PhaseExited or PhaseCrashed) boots again.
func (r Restart) again(phase string) bool {
	return r == RestartAlways || r == RestartOnFailure && phase == PhaseCrashed
}

// Spec is what an instance boots, fixed when it is made: rm and up again to change it.
type Spec struct {
	Name    string
	Recipe  string      // the recipe its image was built from, for ps
	Ready   string      // console text that means the guest is up
	Restart Restart     //
	Options uml.Options // its Kernel, Image and COW are the instance's own files
	// ImageSHA256 is the digest of a container image's root filesystem image: its entrypoint refuses
	// a COW file on the volume made over another (UML tells backing files apart by size and time).
	ImageSHA256 string `json:",omitempty"`
	// Lab, for a lab instance, is the lab it runs: its guests boot Options' kernel and sandbox, each
	// over its image in LabImages (the instance's own copies). Nil for an instance of one guest.
	Lab       *lab.Lab             `json:",omitempty"`
	LabImages map[string]lab.Image `json:",omitempty"`
	// LabGuest, in a lab guest's container, is the one guest of Lab it boots; the others run in
	// pods of their own, reached through a VXLAN tunnel (build/lan).
	LabGuest string `json:",omitempty"`
	// RootPassword is what the console login of a container image's root filesystem asks for: a
	// lab guest's container logs in to configure the guest.
	RootPassword string `json:",omitempty"`
}

// Kind is what the instance runs, for ps: "lab" or "guest".
func (s Spec) Kind() string {
	if s.Lab != nil {
		return "lab"
	}
	return "guest"
}

// Phases of an instance.
const (
	PhaseStarting = "starting" // the guest boots
	PhaseReady    = "ready"    // its console printed the ready text
	PhaseExited   = "exited"   // it powered off
	PhaseCrashed  = "crashed"  // it panicked or its kernel failed
	PhaseStopped  = "stopped"  // stop stopped it
)

// State is what an instance's supervisor last wrote.
type State struct {
	Phase      string
	Supervisor int       // its pid while it runs
	Kernel     int       // the guest's kernel's pid, while it runs
	Started    time.Time // when this boot of the guest started
	Restarts   int       // boots after the first
	Reason     string    // why it exited or crashed
	Guests     []int     // a lab's guests' kernels' pids, while it runs
	Run        string    // a lab's run folder: its LAN captures
	// Checks, in a lab guest's container, are what the lab's checks of its guest found last
	// (checkLab), once they have all passed or stopped being tried.
	Checks []uml.CheckResult `json:",omitempty"`
}

// Kernels are the pids of the kernels running: the guest's, or a lab's guests'.
func (s State) Kernels() []int {
	if len(s.Guests) > 0 {
		return s.Guests
	}
	if s.Kernel > 0 {
		return []int{s.Kernel}
	}
	return nil
}

// Dir is instance name's folder under state.
func Dir(state, name string) string { return filepath.Join(state, "instances", name) }

// Create makes instance name's folder from spec, with its own copies of kernel and image (hard links
// where they can be: dist/ replaces its files rather than writing them over). An instance that
// exists is an error that says how to change it.
func Create(state string, spec Spec, kernel, image string) error {
	return create(state, spec, kernel, func(tmp, dir string, spec *Spec) error {
		spec.Options.Image, spec.Options.COW = filepath.Join(dir, imageFile), filepath.Join(dir, cowFile)
		return files.LinkOrCopy(image, filepath.Join(tmp, imageFile))
	})
}

// CreateLab makes lab instance spec.Name's folder, its spec's Lab set, as Create does: its guests
// boot kernel over images (guest name: its image), each image copied once however many boot it.
func CreateLab(state string, spec Spec, kernel string, images map[string]lab.Image) error {
	return create(state, spec, kernel, func(tmp, dir string, spec *Spec) error {
		if err := os.Mkdir(filepath.Join(tmp, imagesDir), 0o700); err != nil {
			return err
		}
		copies := map[string]string{} // an image's path: its copy's
		spec.LabImages = map[string]lab.Image{}
		for _, g := range spec.Lab.Guests {
			img := images[g.Name]
			name, ok := copies[img.Path]
			if !ok {
				name = fmt.Sprintf("%d.ext4", len(copies)+1)
				if err := files.LinkOrCopy(img.Path, filepath.Join(tmp, imagesDir, name)); err != nil {
					return fmt.Errorf("guest %s: %w", g.Name, err)
				}
				copies[img.Path] = name
			}
			spec.LabImages[g.Name] = lab.Image{Path: filepath.Join(dir, imagesDir, name), RootPassword: img.RootPassword}
		}
		return nil
	})
}

// create makes instance spec.Name's folder in a temporary one, renamed into place once whole: its
// copy of kernel, what own puts there (tmp is where it writes, dir where the files will be) and its
// spec.
func create(state string, spec Spec, kernel string, own func(tmp, dir string, spec *Spec) error) error {
	if err := ident.Name("instance name", spec.Name); err != nil {
		return err
	}
	dir := Dir(state, spec.Name)
	if files.Exists(dir) {
		return fmt.Errorf("instance %s exists (%s): `go tool mage rm %s` first to make it again from the current settings", spec.Name, dir, spec.Name)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+spec.Name+files.TempPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := files.LinkOrCopy(kernel, filepath.Join(tmp, kernelFile)); err != nil {
		return fmt.Errorf("instance %s: %w", spec.Name, err)
	}
	spec.Options.Kernel = filepath.Join(dir, kernelFile)
	if err := own(tmp, dir, &spec); err != nil {
		return fmt.Errorf("instance %s: %w", spec.Name, err)
	}
	if err := writeSpecAndToken(tmp, spec); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// writeSpecAndToken writes spec into the instance folder dir, and a console token when dir has no
// usable one (a regular file with a token in it).
func writeSpecAndToken(dir string, spec Spec) error {
	spec.Options.Console = nil
	if err := files.WriteJSON(filepath.Join(dir, specFile), spec); err != nil {
		return err
	}
	token := filepath.Join(dir, tokenFile)
	if fi, err := os.Lstat(token); err == nil && fi.Mode().IsRegular() && fi.Size() > 1 {
		return nil
	}
	return files.WriteBytes(token, []byte(newToken()+"\n"), 0o600)
}

// Load reads instance name's spec; an unknown name lists the instances there are.
func Load(state, name string) (Spec, error) {
	spec, err := readSpec(Dir(state, name))
	if errors.Is(err, fs.ErrNotExist) {
		names, _ := Names(state)
		return spec, ident.Unknown("instance", name, filepath.Join(state, "instances"), names)
	}
	return spec, err
}

// readSpec reads the spec of the instance in dir.
func readSpec(dir string) (Spec, error) {
	var spec Spec
	err := files.ReadJSON(filepath.Join(dir, specFile), &spec)
	return spec, err
}

// Names lists the instances in state.
func Names(state string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(state, "instances"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ident.Name("", e.Name()) == nil {
			names = append(names, e.Name())
		}
	}
	return names, err
}

// readState reads what dir's supervisor last wrote; a folder it never ran in is stopped.
func readState(dir string) State {
	st := State{Phase: PhaseStopped}
	files.ReadJSON(filepath.Join(dir, stateFile), &st)
	return st
}

func writeState(dir string, st State) error {
	return files.WriteJSON(filepath.Join(dir, stateFile), st)
}
