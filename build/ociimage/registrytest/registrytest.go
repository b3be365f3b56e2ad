// Package registrytest runs a real container registry on loopback for tests.
package registrytest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/host"
)

// Start runs the distribution registry (Debian's docker-registry, the registry most
// registries are built on) on loopback with its storage in a folder of the test's, and returns its
// address and that folder. CI installs it and must not skip.
func Start(t *testing.T) (addr, storage string) {
	t.Helper()
	program, err := host.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker-registry: %v (apt-get install docker-registry)", err)
		}
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	storage = filepath.Join(dir, "data")
	config := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", storage, addr)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(program, "serve", filepath.Join(dir, "config.yml"))
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr, storage
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry never answered on %s:\n%s", addr, log.String())
		}
	}
}
