package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/uml"
)

func TestRestartPolicy(t *testing.T) {
	tests := []struct {
		policy          string
		valid           bool
		exited, crashed bool // boots again after
	}{
		{"no", true, false, false},
		{"on-failure", true, false, true},
		{"always", true, true, true},
		{"sometimes", false, false, false},
		{"", false, false, false},
	}
	for _, tt := range tests {
		r, err := ParseRestart(tt.policy)
		if (err == nil) != tt.valid {
			t.Errorf("ParseRestart(%q): %v", tt.policy, err)
			continue
		}
		if r.again(PhaseExited) != tt.exited || r.again(PhaseCrashed) != tt.crashed {
			t.Errorf("%s: again after exit %v, after a crash %v", tt.policy, r.again(PhaseExited), r.again(PhaseCrashed))
		}
	}
}

// Create makes an instance once, from a name that is a file name; Load of another lists those there are.
func TestCreateAndLoad(t *testing.T) {
	state, src := t.TempDir(), t.TempDir()
	kernel, image := filepath.Join(src, "linux"), filepath.Join(src, "img.ext4")
	os.WriteFile(kernel, []byte("kernel"), 0o755)
	os.WriteFile(image, []byte("image"), 0o644)
	spec := Spec{Name: "web", Recipe: "void-minimal", Ready: "login:", Restart: RestartNo, Options: uml.Options{Mem: "256M"}}
	if err := Create(state, spec, kernel, image); err != nil {
		t.Fatal(err)
	}
	got, err := Load(state, "web")
	dir := Dir(state, "web")
	if err != nil || got.Options.Kernel != filepath.Join(dir, kernelFile) || got.Options.COW != filepath.Join(dir, cowFile) || got.Options.Mem != "256M" {
		t.Errorf("Load: %+v %v", got, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, imageFile)); string(data) != "image" {
		t.Errorf("the instance's image holds %q", data)
	}
	if info, err := os.Stat(filepath.Join(dir, tokenFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the console token: %v %v, want mode 0600", info, err)
	}
	for _, tt := range []struct{ name, want string }{
		{"web", "exists"},
		{"../escape", "instance name"},
		{"", "instance name is empty"},
	} {
		spec.Name = tt.name
		if err := Create(state, spec, kernel, image); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Create(%q): %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := Load(state, "nope"); err == nil || !strings.Contains(err.Error(), `unknown instance "nope"`) || !strings.Contains(err.Error(), "web") {
		t.Errorf("Load of an unknown instance: %v", err)
	}
	if st := readState(dir); st.Phase != PhaseStopped || running(dir) {
		t.Errorf("a new instance: %+v, running %v", st, running(dir))
	}
}

// TestAdopt: a container's instance folder gets the image's spec each start and its console token
// once; a bad name is refused; a folder no supervisor runs in is not ready.
func TestAdopt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	spec := Spec{Name: "web", Ready: "login:", Options: uml.Options{Kernel: "/opt/simple-uml/linux"}}
	if err := Adopt(dir, spec); err != nil {
		t.Fatal(err)
	}
	token, _ := os.ReadFile(filepath.Join(dir, tokenFile))
	spec.Ready = "ready>"
	if err := Adopt(dir, spec); err != nil {
		t.Fatal(err)
	}
	var got Spec
	if err := files.ReadJSON(filepath.Join(dir, specFile), &got); err != nil || got.Ready != "ready>" {
		t.Errorf("spec after the second start: %+v %v", got, err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, tokenFile)); len(token) == 0 || string(again) != string(token) {
		t.Errorf("console token %q, then %q: want one, kept", token, again)
	}
	if err := Adopt(dir, Spec{Name: "../x"}); err == nil {
		t.Error("a spec named ../x was adopted")
	}
	if st, ready := Ready(dir); ready || st.Phase != PhaseStopped {
		t.Errorf("no supervisor: %+v ready %v", st, ready)
	}
}

// CreateLab copies each image once however many guests boot it, and a lab guest's console and logs
// are reached by its name only: another is refused with the list.
func TestCreateLab(t *testing.T) {
	src, state := t.TempDir(), t.TempDir()
	for _, f := range []string{"linux", "shared.ext4", "other.ext4"} {
		os.WriteFile(filepath.Join(src, f), []byte(f), 0o644)
	}
	l := &lab.Lab{Name: "trio", Guests: []lab.Guest{{Name: "a"}, {Name: "r"}, {Name: "c"}}}
	shared, other := filepath.Join(src, "shared.ext4"), filepath.Join(src, "other.ext4")
	images := map[string]lab.Image{"a": {Path: shared, RootPassword: "pa"}, "r": {Path: other}, "c": {Path: shared}}
	if err := CreateLab(state, Spec{Name: "trio", Lab: l}, filepath.Join(src, "linux"), images); err != nil {
		t.Fatal(err)
	}
	spec, err := Load(state, "trio")
	if err != nil {
		t.Fatal(err)
	}
	dir := Dir(state, "trio")
	copies, _ := filepath.Glob(filepath.Join(dir, "images", "*"))
	if len(copies) != 2 || spec.LabImages["a"].Path != spec.LabImages["c"].Path || spec.LabImages["a"].RootPassword != "pa" ||
		spec.Options.Kernel != filepath.Join(dir, "linux") || spec.Kind() != "lab" {
		t.Errorf("copies %v, spec %+v", copies, spec)
	}
	if data, _ := os.ReadFile(spec.LabImages["r"].Path); string(data) != "other.ext4" {
		t.Errorf("r's image is a copy of %q", data)
	}
	if err := labGuest(spec, "x"); err == nil || !strings.Contains(err.Error(), "a, r, c") {
		t.Errorf("an unknown guest: %v", err)
	}
	if err := labGuest(Spec{Name: "web"}, "a"); err == nil || !strings.Contains(err.Error(), "not a lab") {
		t.Errorf("a guest of a single-guest instance: %v", err)
	}
	if err := CreateLab(state, Spec{Name: "trio", Lab: l}, filepath.Join(src, "linux"), images); err == nil || !strings.Contains(err.Error(), "rm trio") {
		t.Errorf("made twice: %v", err)
	}
}

// pruneRuns keeps only the newest lab run folder.
func TestPruneRuns(t *testing.T) {
	runs := t.TempDir()
	for i, name := range []string{"old", "older", "newest"} {
		os.Mkdir(filepath.Join(runs, name), 0o700)
		when := time.Now().Add(time.Duration([]int{-2, -3, 0}[i]) * time.Hour)
		os.Chtimes(filepath.Join(runs, name), when, when)
	}
	if err := pruneRuns(runs); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(runs); len(left) != 1 || left[0].Name() != "newest" {
		t.Errorf("left %v, want newest", left)
	}
	if err := pruneRuns(filepath.Join(runs, "none")); err != nil {
		t.Errorf("no runs yet: %v", err)
	}
}
