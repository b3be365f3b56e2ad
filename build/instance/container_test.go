package instance

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/lan"
	"github.com/simple-uml/simple-uml/build/uml"
)

// TestSupervisorBootsTheImageSpec: in a container, the state folder is a volume others may write.
// Whoever rewrites its spec.json after Adopt (inotify makes that easy) would choose the program the
// supervisor executes as the "kernel" (here a script on the volume), its host folder and its sandbox;
// the supervisor boots the image's spec it was given instead (found by a reviewer).
func TestSupervisorBootsTheImageSpec(t *testing.T) {
	dir := t.TempDir()
	imageSpec := Spec{Name: "web", Ready: "login:", Restart: RestartNo,
		Options: uml.Options{Kernel: "/opt/simple-uml/linux", Image: "/opt/simple-uml/image.ext4", COW: filepath.Join(dir, cowFile)}}
	if err := Adopt(dir, imageSpec); err != nil {
		t.Fatal(err)
	}
	// What a writer of the volume puts there after Adopt.
	marker := filepath.Join(dir, "planted-kernel-ran")
	planted := filepath.Join(dir, "planted-kernel")
	if err := os.WriteFile(planted, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	hostile := imageSpec
	hostile.Options = uml.Options{Kernel: planted, Sandbox: uml.SandboxOff, Timeout: 5 * time.Second}
	if err := files.WriteJSON(filepath.Join(dir, specFile), hostile); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	Supervise(ctx, dir, &imageSpec, nil)
	if files.Exists(marker) {
		t.Errorf("the supervisor executed %s, named by the state folder's spec.json, not the image's kernel %s", planted, imageSpec.Options.Kernel)
	}
}

// TestConsoleReachesStdoutWhenTheLogFails: when console.log cannot be written (a full volume), the
// container's standard output (podman logs, kubectl logs) still gets the console (io.MultiWriter
// would stop at the log's error; found by a reviewer).
func TestConsoleReachesStdoutWhenTheLogFails(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(t.TempDir(), "kernel")
	if err := os.WriteFile(kernel, []byte("#!/bin/sh\necho 'guest says hello'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "web", Ready: "hello", Restart: RestartNo, Options: uml.Options{Kernel: kernel, Sandbox: uml.SandboxOff, Timeout: 5 * time.Second}}
	if err := Adopt(dir, spec); err != nil {
		t.Fatal(err)
	}
	// A console log that cannot be written: a stand-in for ENOSPC.
	if err := os.Mkdir(filepath.Join(dir, consoleFile), 0o700); err != nil {
		t.Fatal(err)
	}
	var stdout lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	Supervise(ctx, dir, nil, &stdout)
	if got := stdout.String(); !strings.Contains(got, "guest says hello") {
		t.Errorf("the container's output: %q; the console log failed, and the output got nothing", got)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestReadyReturnsOverAPlantedFIFO: a FIFO named lock on the volume must not block the readiness
// probe, which opens it (lock.Held; found by a reviewer).
func TestReadyReturnsOverAPlantedFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, lockFile), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { _, ready := Ready(dir); done <- ready }()
	select {
	case ready := <-done:
		if ready {
			t.Error("a FIFO for a lock reads as a running supervisor")
		}
	case <-time.After(2 * time.Second):
		t.Error("Ready blocks on a FIFO named lock")
		// Unblock the open for the test's end.
		if f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_WRONLY, 0); err == nil {
			f.Close()
		}
	}
}

// TestPrepareContainer: a state folder whose files are links or not files is refused naming the
// file; a disk made over another root filesystem image is refused saying how to go on; a new one
// records its image.
func TestPrepareContainer(t *testing.T) {
	spec := Spec{Name: "web", ImageSHA256: strings.Repeat("a", 64)}
	tests := []struct {
		name  string
		plant func(dir string)
		want  string // in the error; empty: accepted
	}{
		{"a new folder", func(string) {}, ""},
		{"a COW file that links elsewhere", func(dir string) { os.Symlink("/etc/passwd", filepath.Join(dir, cowFile)) }, "guest.cow is not a regular file"},
		{"a FIFO for a token", func(dir string) { syscall.Mkfifo(filepath.Join(dir, tokenFile), 0o600) }, "console.token is not a regular file"},
		{"a disk of another image", func(dir string) {
			os.WriteFile(filepath.Join(dir, cowFile), []byte("cow"), 0o600)
			os.WriteFile(filepath.Join(dir, imageIDFile), []byte(strings.Repeat("b", 64)+"\n"), 0o600)
		}, "was made over another root filesystem image (sha256 bbbb"},
		{"a disk of no recorded image", func(dir string) { os.WriteFile(filepath.Join(dir, cowFile), []byte("cow"), 0o600) }, "(sha256 not recorded)"},
		{"a disk of this image", func(dir string) {
			os.WriteFile(filepath.Join(dir, cowFile), []byte("cow"), 0o600)
			os.WriteFile(filepath.Join(dir, imageIDFile), []byte(spec.ImageSHA256+"\n"), 0o600)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.plant(dir)
			err := prepareContainer(dir, spec)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want %q", err, tt.want)
			case tt.want == "":
				if id, _ := os.ReadFile(filepath.Join(dir, imageIDFile)); strings.TrimSpace(string(id)) != spec.ImageSHA256 {
					t.Errorf("the image recorded: %q", id)
				}
			}
		})
	}
}

// trioJSON is a router (r) between two LANs, a guest on each (a, c), as build/kube gives it to a
// lab guest's container.
const trioJSON = `{"Name": "trio", "LANs": [{"Name": "left"}, {"Name": "right"}], "Guests": [
	{"Name": "a", "Interfaces": [{"LAN": "left", "Address": "10.9.1.1/24"}]},
	{"Name": "r", "Forwarding": true, "Interfaces": [{"LAN": "left", "Address": "10.9.1.254/24"}, {"LAN": "right", "Address": "10.9.2.254/24"}]},
	{"Name": "c", "Interfaces": [{"LAN": "right", "Address": "10.9.2.1/24"}]},
	{"Name": "f", "Image": "/srv/file.ext4", "RootPassword": "x"}]}`

// TestLabGuestSpec: a lab guest's container boots the image's root filesystem as the guest it is
// told, and refuses a guest the lab has not, one that boots an image file, and a lab that is not one.
func TestLabGuestSpec(t *testing.T) {
	image := Spec{Name: "test", Ready: "login:", RootPassword: "suml", Options: uml.Options{Image: "/opt/simple-uml/image.ext4"}}
	spec, err := labGuestSpec(image, trioJSON, "r")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Name != "trio-r" || spec.LabGuest != "r" || spec.Lab.Name != "trio" || spec.LabImages["r"] != (lab.Image{Path: "/opt/simple-uml/image.ext4", RootPassword: "suml"}) {
		t.Errorf("spec %+v", spec)
	}
	for _, tc := range []struct{ name, lab, guest, want string }{
		{"no such guest", trioJSON, "z", "has no such guest (it has a, r, c, f)"},
		{"an image file", trioJSON, "f", "boots the image file /srv/file.ext4"},
		{"not a lab", `{"Name": "trio"}`, "a", LabVar + ": lab trio: no [[guest]]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := labGuestSpec(image, tc.lab, tc.guest); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestLabPeers: each LAN's peers are the other guests on it, by their pods' names.
func TestLabPeers(t *testing.T) {
	l, err := lab.Decode([]byte(trioJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		guest string
		lan   int
		want  []string
	}{
		{"a", 0, []string{"trio-r"}},
		{"r", 0, []string{"trio-a"}},
		{"r", 1, []string{"trio-c"}},
		{"c", 1, []string{"trio-r"}},
	} {
		var got []string
		for _, p := range labPeers(l, tc.lan, tc.guest) {
			if p.Port != lan.VXLANPort || len(p.Names) != 2 || p.Names[1] != p.Names[0]+"-pod-0" {
				t.Errorf("peer %+v", p)
			}
			got = append(got, p.Names[0])
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s on LAN %d: peers %v, want %v", tc.guest, tc.lan, got, tc.want)
		}
	}
}
