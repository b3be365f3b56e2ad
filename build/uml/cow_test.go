package uml

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/peer"
	"golang.org/x/sys/unix"
)

// TestCreateCOW checks the header and size of a new COW file against UML's format: what UML reads
// back is the end-to-end boot tests' part (they boot over COW files made here).
func TestCreateCOW(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "image.ext4")
	if err := os.WriteFile(image, make([]byte, 100*1024*1024/64), 0o644); err != nil { // 1.6 MB
		t.Fatal(err)
	}
	mtime := time.Unix(1_700_000_000, 0)
	os.Chtimes(image, mtime, mtime)
	cow := filepath.Join(dir, "guest.cow")
	if err := createCOW(cow, image); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(cow)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	size := int64(100 * 1024 * 1024 / 64)
	sectors := size / 512
	// The bitmap at 8192 (the header rounded to the page), the data after it rounded to the page.
	wantLen := roundUp(8192+(sectors+7)/8, 4096) + size
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"magic", uint64(be.Uint32(data[0:])), 0x4f4f4f4d},
		{"version", uint64(be.Uint32(data[4:])), 3},
		{"mtime", uint64(be.Uint32(data[8:])), 1_700_000_000},
		{"size", be.Uint64(data[12:]), uint64(size)},
		{"sector size", uint64(be.Uint32(data[20:])), 512},
		{"alignment", uint64(be.Uint32(data[24:])), 4096},
		{"format", uint64(be.Uint32(data[28:])), 0},
		{"file length", uint64(len(data)), uint64(wantLen)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if backing := strings.TrimRight(string(data[32:32+4096]), "\x00"); backing != image {
		t.Errorf("backing file %q, want %q", backing, image)
	}
	if info, _ := os.Stat(cow); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (the guest's disk is private)", info.Mode())
	}
	// Never over an existing file, and nothing left behind when it fails.
	os.WriteFile(cow, []byte("keep"), 0o600)
	if err := createCOW(cow, image); err == nil {
		t.Error("createCOW replaced an existing file")
	}
	if got, _ := os.ReadFile(cow); string(got) != "keep" {
		t.Errorf("the existing file was changed: %q", got)
	}
	if err := createCOW(filepath.Join(dir, "other.cow"), filepath.Join(dir, "missing.ext4")); err == nil || !strings.Contains(err.Error(), "missing.ext4") {
		t.Errorf("a missing image: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// holdCOW makes the test binary lock the COW file it names as a running kernel does, and wait (see
// TestMain).
const holdCOW = "SUML_UML_HOLD_COW"

func lockCOW(cow string) int {
	f, err := os.OpenFile(cow, os.O_RDWR, 0)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	lock := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lock); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	return 0
}

// TestCOWInUse: a second boot of a COW file a kernel holds is refused, naming the holder's pid,
// before anything starts; once that kernel is gone, the file boots again.
func TestCOWInUse(t *testing.T) {
	tests := []struct {
		name string
		args []string // the holder's, after the test binary's own: an instance's kernel names it
		want string   // %s: the COW file, %d: the holder's pid
		fix  string
	}{
		{"a boot", nil, "copy-on-write file %s is in use by pid %d", "SUML_BOOT_COW"},
		{"an instance", []string{"umid=" + InstanceUmid + "web"}, "copy-on-write file %s is in use by instance web, pid %d", "go tool mage stop web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			image, cow := filepath.Join(dir, "image.ext4"), filepath.Join(dir, "guest.cow")
			os.WriteFile(image, make([]byte, 1<<20), 0o644)
			if err := createCOW(cow, image); err != nil {
				t.Fatal(err)
			}
			holder := exec.Command(os.Args[0], append([]string{"-test.run=^$"}, tt.args...)...)
			holder.Env = append(os.Environ(), holdCOW+"="+cow)
			out, err := holder.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := holder.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { holder.Process.Kill(); holder.Wait() }()
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
				t.Fatalf("the holder said %q", line)
			}
			o := Options{Kernel: "/bin/true", Image: image, COW: cow}
			_, err = prepare(o)
			want := fmt.Sprintf(tt.want, cow, holder.Process.Pid)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.fix) {
				t.Errorf("a held COW file: %v, want %q and %q", err, want, tt.fix)
			}
			holder.Process.Kill()
			holder.Wait()
			rt, err := prepare(o)
			if err != nil {
				t.Fatalf("the COW file once its holder is gone: %v", err)
			}
			rt.release()
		})
	}
}

// TestKillLeftKernels: what names a dead run's folder as its uml_dir is killed, what names another
// folder is not.
func TestKillLeftKernels(t *testing.T) {
	left, other := t.TempDir(), t.TempDir()
	start := func(dir string) (*exec.Cmd, io.WriteCloser) {
		cmd := exec.Command("bash", "-c", "read _ || true", "bash", "uml_dir="+dir)
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, in
	}
	stale, staleIn := start(left)
	defer staleIn.Close()
	alive, aliveIn := start(other)
	killLeftKernels(left)
	if err := stale.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the process left with the dead run's folder: %v, want killed", err)
	}
	aliveIn.Close()
	if err := alive.Wait(); err != nil {
		t.Errorf("a process of another folder: %v, want it untouched", err)
	}
}

// TestCancelledBootLeavesNoHelper: a person's boot cancelled while the kernel runs its start-up
// checks. UML ends on SIGTERM without its ptraced check child, which stays stopped in the terminal's
// process group (found by sending SIGTERM to mage boot at start-up); the run's end kills it.
func TestCancelledBootLeavesNoHelper(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "helper")
	t.Setenv("SUML_TEST_HELPER_PID", pidFile)
	kernel := script(t, `sh -c 'kill -STOP $$' helper "$@" &
echo $! > "$SUML_TEST_HELPER_PID"
trap 'exit 0' TERM
while :; do sleep 0.05; done`)
	terminal, err := os.OpenFile(os.DevNull, os.O_RDWR, 0) // a file, as a terminal is: no copying
	if err != nil {
		t.Fatal(err)
	}
	defer terminal.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended := make(chan error, 1)
	go func() {
		ended <- Interactive(ctx, Options{Kernel: kernel, Image: "/img", Sandbox: fakeKernel}, terminal, terminal)
	}()
	var helper int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		data, _ := os.ReadFile(pidFile)
		fmt.Sscan(string(data), &helper)
		if state, _ := peer.State(helper); helper > 0 && state == "T" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stand-in's helper never stopped (pid %d)", helper)
		}
	}
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("Interactive: %v, want cancelled", err)
	}
	// Killed, it is soon gone, or a zombie its new parent has not reaped yet.
	state, err := peer.State(helper)
	for deadline := time.Now().Add(5 * time.Second); err == nil && state != "Z" && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		state, err = peer.State(helper)
	}
	if err == nil && state != "Z" {
		syscall.Kill(helper, syscall.SIGKILL)
		t.Errorf("the kernel's stopped helper %d outlived the boot (state %s)", helper, state)
	}
}
