package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/kernel"
)

// distccd is a distcc daemon of the test's, on a loopback port, logging to a buffer.
type distccd struct {
	port int
	mu   sync.Mutex
	log  bytes.Buffer
}

func (d *distccd) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

// jobs counts the compilations the daemon ran (its log says COMPILE_OK for each).
func (d *distccd) jobs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Count(d.log.String(), "COMPILE_OK")
}

// startDistccd starts a daemon that listens on 127.0.0.1 only and serves 127.0.0.1 only, as a user
// would on a helper machine (with its own address and the clients' network).
func startDistccd(t *testing.T) *distccd {
	t.Helper()
	if _, err := exec.LookPath("distccd"); err != nil {
		t.Fatal("distccd is not installed (.ci/run installs Debian's distcc)")
	}
	d := &distccd{port: freeLocalPort(t)}
	cmd := exec.Command("distccd", "--no-detach", "--daemon", "--listen", "127.0.0.1", "--port", fmt.Sprint(d.port),
		"--allow", "127.0.0.1", "--jobs", "1", "--log-stderr", "--log-level=info", "--user", "nobody")
	cmd.Stderr = d
	// The daemon preforks its workers: a group of their own, ended whole (they hold the log pipe).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	// Wait until it accepts connections.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.port)); err == nil {
			c.Close()
			return d
		}
	}
	t.Fatalf("distccd on port %d did not start:\n%s", d.port, d.log.String())
	return nil
}

// TestDistccEndToEnd builds the kernel with kernel.cc_wrapper = "distcc" through two distcc daemons
// on loopback, the helpers named by the user's own DISTCC_HOSTS, and wants a kernel byte for byte the
// same as the local build's, with both daemons having compiled for it.
func TestDistccEndToEnd(t *testing.T) {
	requireE2E(t)
	local := e2eKernel(t)
	m, version := debianMirror(t)
	d1, d2 := startDistccd(t), startDistccd(t)
	t.Setenv("DISTCC_HOSTS", fmt.Sprintf("127.0.0.1:%d/1 127.0.0.1:%d/1", d1.port, d2.port))
	// distcc's fallback stays on, as users have it: kernel/configs.c includes a file the helper has
	// not (.incbin of the config), and distcc compiles it here.
	t.Setenv("DISTCC_DIR", t.TempDir())
	cfg := m.testConfig(t, version, withSettings(e2eKernelSettings(), map[string]string{"SUML_KERNEL_CC_WRAPPER": "distcc"}))
	start := time.Now()
	res, err := Kernel(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("distcc build through two loopback daemons: %s; jobs %d and %d", time.Since(start).Round(time.Second), d1.jobs(), d2.jobs())
	if d1.jobs() == 0 || d2.jobs() == 0 {
		t.Errorf("jobs compiled by the daemons: %d and %d; want both at work", d1.jobs(), d2.jobs())
	}
	if res.Record.CCWrapper != "distcc" {
		t.Errorf("the record's compiler wrapper: %q", res.Record.CCWrapper)
	}
	// The lean profile's kernel has no debug information, where distcc would leave its compile
	// folder (and the linker's build ID would hash it): the bytes are the local build's.
	distccKernel, ids := withoutBuildID(t, filepath.Join(cfg.Paths.Dist, kernel.LinuxName))
	localKernel, _ := withoutBuildID(t, local)
	if got, want := sha256File(t, filepath.Join(cfg.Paths.Dist, kernel.LinuxName)), sha256File(t, local); got != want {
		t.Errorf("the distcc kernel %s is not the local build's %s (with their %d build IDs zeroed, equal: %v)", got, want, ids, bytes.Equal(distccKernel, localKernel))
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	sum, err := digest.File(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// withoutBuildID reads a kernel and returns it with every GNU build ID note's ID zeroed (the
// kernel's own, and those of the images it embeds, such as UML's vDSO), and how many there were.
func withoutBuildID(t *testing.T, path string) ([]byte, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A note: name size 4, descriptor size 20, type 3 (NT_GNU_BUILD_ID), "GNU\0", the 20-byte ID.
	header := []byte{4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 'G', 'N', 'U', 0}
	n := 0
	for i := 0; ; n++ {
		at := bytes.Index(data[i:], header)
		if at < 0 || i+at+len(header)+20 > len(data) {
			break
		}
		id := i + at + len(header)
		clear(data[id : id+20])
		i = id + 20
	}
	return data, n
}
