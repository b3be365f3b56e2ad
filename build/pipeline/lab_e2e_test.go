package pipeline

import (
	"context"
	"os/exec"
	"syscall"

	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// threeGuests is the end-to-end lab: a and b on lan1, c on lan2, a router between them, and c's web
// server forwarded to the host's 127.0.0.1 through its uplink. The checks run in order: the router
// forwards at first, then stops forwarding, and a must lose c.
const threeGuests = `
[[lan]]
name = "lan1"
capture = true

[[lan]]
name = "lan2"

[[guest]]
name = "a"
interface = [{ lan = "lan1", address = "10.1.0.1/24" }]
routes = ["10.2.0.0/24 via 10.1.0.254"]

[[guest]]
name = "b"
interface = [{ lan = "lan1", address = "10.1.0.2/24" }]
run = ["mkdir -p /srv && echo served-by-b > /srv/index.html && httpd -p 80 -h /srv"]

[[guest]]
name = "router"
forwarding = true
interface = [{ lan = "lan1", address = "10.1.0.254/24" }, { lan = "lan2", address = "10.2.0.254/24" }]

[[guest]]
name = "c"
uplink = true
forward = "%d:80"
interface = [{ lan = "lan2", address = "10.2.0.3/24" }]
routes = ["10.1.0.0/24 via 10.2.0.254"]
run = ["mkdir -p /srv && echo served-by-c > /srv/index.html && httpd -p 80 -h /srv"]

[[check]]
name = "a reaches b's web server on lan1"
guest = "a"
run = "wget -q -O - http://10.1.0.2/"
want = "served-by-b"

[[check]]
name = "a reaches c on lan2 through the router"
guest = "a"
run = "wget -q -O - http://10.2.0.3/"
want = "served-by-c"

[[check]]
name = "the router stops forwarding"
guest = "router"
run = "echo 0 > /proc/sys/net/ipv4/ip_forward"

[[check]]
name = "a no longer reaches c: its request goes unanswered until timeout ends it (SIGTERM)"
guest = "a"
run = "timeout 3 wget -q -O - http://10.2.0.3/ 2>/dev/null; echo $?"
want = "143"

[[check]]
name = "b, on lan1 only, has no way to lan2"
guest = "b"
run = "wget -q -O - http://10.2.0.3/ 2>&1"
want = "wget: can't connect to remote host (10.2.0.3): Network is unreachable"
fail = true
`

// TestLabEndToEnd brings up the three-guest lab from the end-to-end pair's kernel and image, runs
// its checks, reaches c's forwarded port from the host while it runs, and reads lan1's capture.
func TestLabEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, _ := e2ePair(t)
	labs := t.TempDir()
	port := freeLocalPort(t)
	// Here the router boots an image the lab file names, beside it, rather than its recipe's; and b
	// runs at a lower CPU priority.
	image, _, _ := manifest.RootfsFiles(filepath.Join(ws, "dist"), "test")
	os.Mkdir(filepath.Join(labs, "images"), 0o755)
	if err := files.LinkOrCopy(image, filepath.Join(labs, "images", "router.ext4")); err != nil {
		t.Fatal(err)
	}
	labFile := fmt.Sprintf(threeGuests, port)
	labFile = strings.Replace(labFile, "name = \"router\"\n", "name = \"router\"\nimage = \"images/router.ext4\"\nroot_password = \"suml\"\n", 1)
	labFile = strings.Replace(labFile, "name = \"b\"\n", "name = \"b\"\nnice = 10\n", 1)
	if err := os.WriteFile(filepath.Join(labs, "three.toml"), []byte(labFile), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := bootConfig(t, ws, map[string]string{"SUML_LABS": labs})
	ctx := context.Background()

	r, stop := runningLab(t, ctx, cfg, "three")
	for guest, want := range map[string]int{"a": 0, "b": 10} {
		if got := attacktest.Nice(t, r.Pid(guest)); got != want {
			t.Errorf("%s's kernel runs at nice %d, want %d", guest, got, want)
		}
	}
	// The host reaches c's web server through its forward while the lab runs.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("the forwarded port: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "served-by-c" {
		t.Errorf("the forwarded port answered %q", body)
	}
	results, err := r.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 5 {
		t.Fatalf("%d check results, want 5: %+v", len(results), results)
	}
	for _, c := range results {
		if !c.OK {
			t.Errorf("check %q: %s", c.Name, c.Detail)
		}
	}
	if down := r.Down(); len(down) > 0 {
		t.Errorf("guests went down: %v", down)
	}
	// The lab's guests, as root, go for a service on the host's loopback and on all its addresses:
	// c through its uplink, whose door to the host is closed; the others have no way off their LANs.
	loopback := tokenService(t, "tcp", "127.0.0.1:0")
	everywhere := tokenService(t, "tcp", ":0")
	for _, g := range []string{"a", "b", "router", "c"} {
		for _, target := range []string{fmt.Sprintf("10.0.2.2:%d", loopback.port), fmt.Sprintf("10.0.2.2:%d", everywhere.port)} {
			out, status, err := r.Run(ctx, g, "nc -w 3 "+strings.Replace(target, ":", " ", 1)+" </dev/null 2>&1")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s -> host %s: %q (status %d)", g, target, out, status)
			if strings.Contains(out, loopback.token) || strings.Contains(out, everywhere.token) || status == 0 {
				t.Errorf("%s reached the host's %s: %q (status %d)", g, target, out, status)
			}
		}
	}
	if loopback.heard() || everywhere.heard() {
		t.Error("a host service heard from the lab")
	}
	dir, sockets := r.Dir, r.Sockets()
	stop()

	// Everything is gone: no kernel of the lab runs, no socket is left.
	if procs := umlProcesses(dir); len(procs) > 0 {
		t.Errorf("processes left after Stop: %v", procs)
	}
	if _, err := os.Stat(sockets); !os.IsNotExist(err) {
		t.Errorf("the sockets' folder %s is left after Stop: %v", sockets, err)
	}
	checkCapture(t, filepath.Join(dir, "lan1.pcap"))
}

// labTestChild is `mage labTest three` as a user runs it: the lab, its checks, everything stopped.
func labTestChild() int {
	cfg, err := config.Load(os.Getenv("SUML_TEST_ROOT"), nil)
	if err == nil {
		_, err = LabTest(context.Background(), cfg, "three", os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labTest as uid", os.Getuid(), "failed:", err)
		return 1
	}
	return 0
}

// TestLabTestUnprivileged runs `mage labTest` on the three-guest lab as an ordinary user (uid 65534
// when the tests run as root), in the end-to-end pair's folder, which that user owns.
func TestLabTestUnprivileged(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, owner := e2ePair(t)
	labs := filepath.Join(ws, "labs")
	os.MkdirAll(labs, 0o755)
	if err := os.WriteFile(filepath.Join(labs, "three.toml"), []byte(fmt.Sprintf(threeGuests, freeLocalPort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chownTree(labs, owner); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(ws, "pipeline.test"))
	cmd.Dir = ws
	cmd.Env = []string{childSwitch + "=labtest", "SUML_TEST_ROOT=" + filepath.Join(ws, "root"),
		"SUML_RECIPES=" + filepath.Join(ws, "recipes"), "SUML_ROOTFS_RECIPE=test", "SUML_DIST=" + filepath.Join(ws, "dist"),
		"SUML_CACHE=" + filepath.Join(ws, "cache"), "SUML_LABS=" + labs, "SUML_BOOT_TIMEOUT=30", "HOME=" + ws, "PATH=" + os.Getenv("PATH")}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged}}
	}
	out, err := cmd.CombinedOutput()
	t.Logf("labTest as uid %d:\n%s", owner, out)
	if err != nil {
		t.Fatalf("labTest as an ordinary user: %v", err)
	}
	if !strings.Contains(string(out), "lab three passed: 5 checks") {
		t.Errorf("labTest did not report its checks passed")
	}
	if procs := umlProcesses(filepath.Join(ws, "cache", "run")); len(procs) > 0 {
		t.Errorf("processes left after labTest: %v", procs)
	}
}

// checkCapture reads lan1's capture: ARP between its guests, and a's HTTP request to b's port 80
// with b's answer, all on 10.1.0.0/24.
func checkCapture(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var arp, request, answer int
	src := gopacket.NewPacketSource(r, layers.LayerTypeEthernet)
	for p := range src.Packets() {
		if p.Layer(layers.LayerTypeARP) != nil {
			arp++
		}
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			continue
		}
		switch {
		case ip.SrcIP.Equal(net.IPv4(10, 1, 0, 1)) && ip.DstIP.Equal(net.IPv4(10, 1, 0, 2)) && tcp.DstPort == 80 && strings.HasPrefix(string(tcp.Payload), "GET / HTTP"):
			request++
		case ip.SrcIP.Equal(net.IPv4(10, 1, 0, 2)) && tcp.SrcPort == 80 && strings.Contains(string(tcp.Payload), "served-by-b"):
			answer++
		}
	}
	if arp == 0 || request != 1 || answer != 1 {
		t.Errorf("lan1's capture: %d ARP frames, %d requests to b, %d answers from b; want ARP, one of each", arp, request, answer)
	}
}
