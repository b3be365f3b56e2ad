package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/ociimage"
)

// podmanRun are the options podman needs on the hosts the project is tested on: runc (crun fails on
// hybrid cgroups) and limits within the hard ones (podman's defaults are above them).
var podmanRun = []string{"--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096"}

// requirePodman skips where podman cannot run containers (an ordinary user's machine); CI installs
// it and runs as root, and must not skip.
func requirePodman(t *testing.T) {
	t.Helper()
	_, err := host.LookPath("podman")
	switch {
	case err == nil && os.Geteuid() == 0:
	case os.Getenv("CI") != "":
		t.Fatalf("podman as root is needed (apt-get install podman runc catatonit): %v", err)
	default:
		t.Skip("podman as root runs the image here: apt-get install podman runc catatonit, and run as root")
	}
}

func podman(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("podman", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestImageEndToEnd: `mage image` of the end-to-end pair gives the same digest from another folder,
// under another umask and time zone; podman loads it and runs it as the image's user, with no
// network: the guest gets ready, its console is the container's log, and a stop ends it cleanly.
func TestImageEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	requirePodman(t)
	ws, _, _ := e2ePair(t)
	cfg := bootConfig(t, ws, map[string]string{"SUML_BOOT_RECIPE": "test"})
	digest, err := Image(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(cfg.ImagesDir(), "test.oci.tar")
	t.Cleanup(func() { os.Remove(archive); os.RemoveAll(ociimage.LayoutDir(archive)) })

	// Again from a copy of dist/ elsewhere, with another umask and time zone.
	other := filepath.Join(t.TempDir(), "dist")
	linkDist(t, filepath.Join(ws, "dist"), other)
	old := syscall.Umask(0o077)
	local := time.Local
	time.Local = time.FixedZone("UTC+13", 13*3600)
	again, err := Image(context.Background(), bootConfig(t, ws, map[string]string{"SUML_BOOT_RECIPE": "test", "SUML_DIST": other}), testLog(t))
	syscall.Umask(old)
	time.Local = local
	if err != nil || again != digest {
		t.Fatalf("the image built again elsewhere: %s %v, want %s", again, err, digest)
	}

	loaded := podman(t, "load", "-q", "-i", archive)
	ref := strings.TrimSpace(strings.TrimPrefix(loaded, "Loaded image:"))
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", ref).Run() })
	if id := podman(t, "image", "inspect", "--format", "{{.Digest}}", ref); id != digest {
		t.Errorf("podman has %s as %s, want %s", ref, id, digest)
	}
	name := fmt.Sprintf("suml-e2e-%d", os.Getpid())
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", name).Run() })
	podman(t, append(append([]string{"run", "-d", "--name", name, "--network", "none"}, podmanRun...), ref)...)
	ready := waitFor(time.Minute, func() bool {
		return exec.Command("podman", "exec", name, "/usr/bin/simple-uml-guest", "ready").Run() == nil
	})
	logs := podman(t, "logs", name)
	if !ready || !strings.Contains(logs, "SUML-BOOTED") {
		t.Fatalf("the guest in the container never got ready:\n%s", logs)
	}
	// The kernel and its helpers run as the image's user, not root.
	for _, line := range strings.Split(podman(t, "top", name, "user", "args"), "\n")[1:] {
		if !strings.HasPrefix(strings.TrimSpace(line), "1000") {
			t.Errorf("a process in the container is not the image's user: %q", line)
		}
	}
	podman(t, "stop", "-t", "20", name)
	if status := podman(t, "inspect", "--format", "{{.State.ExitCode}}", name); status != "0" {
		t.Errorf("stopped, the container exited %s, want 0:\n%s", status, podman(t, "logs", name))
	}
	t.Run("kube", func(t *testing.T) { kubeEndToEnd(t, cfg) })
	t.Run("kube lab", func(t *testing.T) {
		labs, err := filepath.Abs(filepath.Join("testdata", "labs"))
		if err != nil {
			t.Fatal(err)
		}
		kubeLabEndToEnd(t, bootConfig(t, ws, map[string]string{"SUML_BOOT_RECIPE": "test", "SUML_LABS": labs}))
	})
	t.Run("a forward published", func(t *testing.T) {
		forwardEndToEnd(t, bootConfig(t, ws, map[string]string{"SUML_BOOT_RECIPE": "test", "SUML_BOOT_NET": "user", "SUML_BOOT_FORWARD": "8080:80"}))
	})
}

// forwardEndToEnd: an image made with a forward (boot.forward 8080:80) listens on the container's
// own addresses, so that `podman run -p` publishes it: a server in the guest answers on the host's
// 127.0.0.1. The door to the host stays closed from inside the container: the guest reaches
// neither the container's loopback nor its own address.
func forwardEndToEnd(t *testing.T, cfg config.Config) {
	if _, err := Image(context.Background(), cfg, testLog(t)); err != nil {
		t.Fatal(err)
	}
	loaded := podman(t, "load", "-q", "-i", filepath.Join(cfg.ImagesDir(), "test.oci.tar"))
	ref := strings.TrimSpace(strings.TrimPrefix(loaded, "Loaded image:"))
	name := fmt.Sprintf("suml-e2e-fwd-%d", os.Getpid())
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", name).Run() })
	port := freeLocalPort(t)
	podman(t, append(append([]string{"run", "-d", "--name", name, "-p", fmt.Sprintf("127.0.0.1:%d:8080", port)}, podmanRun...), ref)...)
	if !waitFor(time.Minute, func() bool {
		return exec.Command("podman", "exec", name, ociimage.EntrypointPath, "ready").Run() == nil
	}) {
		t.Fatalf("the guest never got ready:\n%s", podman(t, "logs", name))
	}
	// The server in the guest answers once. Before the host asks it, the guest tries the doors the
	// container has and that stay closed: its loopback (10.0.2.2, where the forward listens too)
	// and its own address.
	own := podman(t, "inspect", "--format", "{{.NetworkSettings.IPAddress}}", name)
	screen := podmanConsole(t, name, "own-", "\n", "root\n", "suml\n",
		"nc -l -p 80 -e /bin/sh -c 'echo SUML-FOR''WARD-OK' >/dev/null 2>&1 &\n", // its answer is not what was typed
		"nc -w 3 10.0.2.2 8080 </dev/null; echo d''oor-$?\n",
		"nc -w 3 "+own+" 8080 </dev/null; echo o''wn-$?\n")
	for _, door := range []string{"door", "own"} {
		if m := regexp.MustCompile(door + `-(\d+)`).FindStringSubmatch(screen); m == nil || m[1] == "0" || strings.Contains(screen, "SUML-FORWARD-OK") {
			t.Errorf("from inside the container the guest reached its %s door (host access is closed):\n%s", door, screen)
		}
	}
	var got []byte
	for try := 0; try < 20 && !strings.Contains(string(got), "SUML-FORWARD-OK"); try++ {
		time.Sleep(200 * time.Millisecond) // the server may not listen yet
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		got, _ = io.ReadAll(c)
		c.Close()
	}
	if !strings.Contains(string(got), "SUML-FORWARD-OK") {
		t.Errorf("host 127.0.0.1:%d -> container :8080 -> guest :80 answered %q", port, got)
	}
}

// kubeLabEndToEnd plays `mage kube -lab trio`'s manifests with podman kube play on a bridge network
// of its own: three pods, each booting one guest of the lab (a router between two LANs), the LANs
// carried between the pods over VXLAN. The lab's checks pass in each pod (a and c reach each other
// through r); a killed guest's pod comes back with its disk and its LAN; kube down leaves no
// container.
func kubeLabEndToEnd(t *testing.T, cfg config.Config) {
	manifests := kubeManifests(t, cfg, "trio")
	network := fmt.Sprintf("suml-e2e-%d", os.Getpid())
	podman(t, "network", "create", network)
	t.Cleanup(func() { exec.Command("podman", "network", "rm", "-f", network).Run() })
	t.Cleanup(func() {
		exec.Command("podman", "kube", "down", manifests).Run()
		for _, g := range []string{"a", "r", "c"} {
			exec.Command("podman", "volume", "rm", "-f", "trio-"+g+"-disk").Run()
		}
	})
	podman(t, "kube", "play", "--network", network, manifests)
	container := func(guest string) string { return "trio-" + guest + "-pod-0-guest" } // podman's names
	ready := func(guest string) bool {
		return exec.Command("podman", "exec", container(guest), ociimage.EntrypointPath, "ready").Run() == nil
	}
	for _, g := range []string{"a", "r", "c"} {
		if !waitFor(time.Minute, func() bool { return ready(g) }) {
			t.Fatalf("guest %s's pod never got ready:\n%s", g, podman(t, "logs", container(g)))
		}
	}
	// The lab's checks, each run in its guest's pod until it passes: a and c reach each other
	// through r, across the pods.
	for _, g := range []string{"a", "r", "c"} {
		var out []byte
		var status int
		waitFor(4*time.Minute, func() bool {
			var err error
			out, err = exec.Command("podman", "exec", container(g), ociimage.EntrypointPath, "checks").CombinedOutput()
			status = exitStatus(err)
			return status != 2 // 2: still being tried
		})
		if status != 0 || (g != "r" && !strings.Contains(string(out), "ok   "+g)) {
			t.Errorf("the lab's checks in %s: status %d\n%s", g, status, out)
		}
	}
	// The LANs work once each pod's tunnel has found its peers' pods, a moment after they are ready.
	ping := "for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 2 10.9.2.1 >/dev/null && echo reached-$((6*7)) && break; done\n"
	if screen := podmanConsole(t, container("a"), "reached-42", "\n", ping, "echo kept > /root/mark && sync\n"); !strings.Contains(screen, "reached-42") {
		t.Fatalf("a did not reach c through r across the pods:\n%s", screen)
	}

	// a killed from outside: its pod's restart policy brings it back, its disk and LAN with it.
	syscall.Kill(atoi(podman(t, "inspect", "--format", "{{.State.Pid}}", container("a"))), syscall.SIGKILL)
	if !waitFor(time.Minute, func() bool {
		return podman(t, "inspect", "--format", "{{.RestartCount}}", container("a")) == "1" && ready("a")
	}) {
		t.Fatalf("the killed guest did not come back:\n%s", podman(t, "logs", container("a")))
	}
	if screen := podmanConsole(t, container("a"), "reached-42", "\n", "cat /root/mark\n", ping); !strings.Contains(screen, "\nkept") {
		t.Errorf("the file a wrote is gone after its pod came back:\n%s", screen)
	}

	podman(t, "kube", "down", manifests)
	if left := podman(t, "ps", "-a", "--filter", "name=trio-", "--format", "{{.Names}}"); left != "" {
		t.Errorf("containers left after kube down: %s", left)
	}
}

// exitStatus is a command's exit status from its error (0 for none, -1 when it did not run).
func exitStatus(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// podmanConsole types lines on the console of the guest in container (simple-uml-guest console,
// through podman exec) and fails unless want shows within 30 s; it returns what the console showed.
func podmanConsole(t *testing.T, container, want string, lines ...string) string {
	t.Helper()
	cmd := exec.Command("podman", "exec", "-i", container, ociimage.EntrypointPath, "console")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	cmd.Stdout, cmd.Stderr = &screen, &screen
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	for _, l := range lines {
		time.Sleep(500 * time.Millisecond)
		io.WriteString(in, l)
	}
	if !waitFor(30*time.Second, func() bool { return strings.Contains(screen.String(), want) }) {
		t.Fatalf("the console of %s never showed %q:\n%s", container, want, screen.String())
	}
	return screen.String()
}

// kubeManifests writes `mage kube`'s manifests (of lab labName, when given) for podman kube play,
// and gives podman the containers.conf it needs here: runc and the limits.
func kubeManifests(t *testing.T, cfg config.Config, labName string) string {
	t.Helper()
	manifests, err := Kube(context.Background(), cfg, labName, "", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(manifests) })
	conf := filepath.Join(t.TempDir(), "containers.conf")
	os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n[engine]\nruntime = \"runc\"\n"), 0o644)
	t.Setenv("CONTAINERS_CONF", conf)
	return manifests
}

// kubeEndToEnd plays `mage kube`'s manifests with podman kube play (its containers.conf: runc and
// the limits): the guest gets ready in its pod under the restricted settings, keeps what it wrote
// on its claim when its process is killed and the pod's restart policy brings it back, and kube
// down leaves no container.
func kubeEndToEnd(t *testing.T, cfg config.Config) {
	manifests := kubeManifests(t, cfg, "")
	podman(t, "kube", "play", "--network", "none", manifests)
	t.Cleanup(func() {
		exec.Command("podman", "kube", "down", manifests).Run()
		exec.Command("podman", "volume", "rm", "-f", "test-disk").Run()
	})
	const guest = "test-pod-0-guest" // podman's name for the deployment's first pod's container
	guestReady := func() bool {
		return exec.Command("podman", "exec", guest, "/usr/bin/simple-uml-guest", "ready").Run() == nil
	}
	if !waitFor(time.Minute, guestReady) {
		t.Fatalf("the guest's pod never got ready:\n%s", podman(t, "logs", guest))
	}
	if got := podman(t, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}} {{len .HostConfig.CapAdd}}", guest); got != "true 1000:1000 0" {
		t.Errorf("the guest's container: read-only root, user, capabilities added: %s", got)
	}
	disk := podman(t, "volume", "inspect", "--format", "{{.Mountpoint}}", "test-disk")
	token, err := os.ReadFile(filepath.Join(disk, "console.token"))
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(disk, "console.sock")
	typeOnConsole(t, socket, string(token), "written", "\n", "root\n", "suml\n", "echo kept > /root/mark && sync && echo writ''ten\n")

	// Killed from outside (a node's OOM killer, a crash): the pod's restart policy brings it back.
	syscall.Kill(atoi(podman(t, "inspect", "--format", "{{.State.Pid}}", guest)), syscall.SIGKILL)
	if !waitFor(time.Minute, func() bool {
		return podman(t, "inspect", "--format", "{{.RestartCount}}", guest) == "1" && guestReady()
	}) {
		t.Fatalf("the killed guest did not come back:\n%s", podman(t, "logs", guest))
	}
	typeOnConsole(t, socket, string(token), "still kept", "\n", "root\n", "suml\n", "echo still $(cat /root/mark)\n")

	podman(t, "kube", "down", manifests)
	if left := podman(t, "ps", "-a", "--filter", "name=test-pod-0", "--format", "{{.Names}}"); left != "" {
		t.Errorf("containers left after kube down: %s", left)
	}
}

// typeOnConsole types lines on the console served at socket (the instance's protocol: its token
// first) and fails unless want shows within 30 s.
func typeOnConsole(t *testing.T, socket, token, want string, lines ...string) {
	t.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(token))
	var screen syncBuffer
	go io.Copy(&screen, c)
	for _, l := range lines {
		time.Sleep(500 * time.Millisecond)
		c.Write([]byte(l))
	}
	if !waitFor(30*time.Second, func() bool { return strings.Contains(screen.String(), want) }) {
		t.Fatalf("the console never showed %q:\n%s", want, screen.String())
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// linkDist makes to a copy of the dist/ folder from, by hard links (its files are never written over).
func linkDist(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".oci.tar") {
			if err := os.Link(filepath.Join(from, e.Name()), filepath.Join(to, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
}
