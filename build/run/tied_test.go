package run

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startTiedAndChurn starts `sleep 33` tied to this process, prints its pid, then makes Go end
// threads (goroutines that return locked to theirs) as a confined start's does, and waits to be
// killed. A parent-death signal bound to whatever thread started the process would fire here.
func startTiedAndChurn(confined bool) int {
	var confine func() error
	if confined {
		confine = func() error { return unix.Setpriority(unix.PRIO_PROCESS, 0, 3) }
	}
	tied, err := StartTied(exec.Command("sleep", "33"), confine)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println(tied.cmd.Process.Pid)
	for i := 0; i < 50; i++ {
		done := make(chan struct{})
		go func() { goruntime.LockOSThread(); close(done) }()
		<-done
	}
	dumpable, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	fmt.Println("dumpable", dumpable)
	time.Sleep(time.Minute) // until killed
	return 0
}

// A tied process lives while this program does, however many threads Go ends meanwhile, and dies
// when it is killed; a confined start makes this program non-dumpable, a plain one does not.
func TestStartTiedDiesWithItsParentOnly(t *testing.T) {
	for _, c := range []struct {
		mode     string
		dumpable string
	}{{"tied", "1"}, {"tied-confined", "0"}} {
		t.Run(c.mode, func(t *testing.T) {
			parent := exec.Command(os.Args[0], "-test.run=^$")
			parent.Env = append(os.Environ(), "SUML_RUN_CHILD="+c.mode)
			out, err := parent.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := parent.Start(); err != nil {
				t.Fatal(err)
			}
			defer parent.Process.Kill()
			lines := bufio.NewScanner(out)
			lines.Scan()
			pid, err := strconv.Atoi(lines.Text())
			if err != nil {
				t.Fatalf("the parent printed %q, not a pid", lines.Text())
			}
			defer syscall.Kill(pid, syscall.SIGKILL)
			lines.Scan()
			if got := strings.TrimPrefix(lines.Text(), "dumpable "); got != c.dumpable {
				t.Errorf("the parent's dumpable flag is %s, want %s", got, c.dumpable)
			}
			time.Sleep(200 * time.Millisecond)
			if !alive(pid) {
				t.Fatal("the tied process died while its parent lived (its starting thread ended)")
			}
			parent.Process.Kill()
			parent.Wait()
			for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the tied process outlived its killed parent")
				}
			}
		})
	}
}

// alive says whether pid runs (a zombie does not: its parent has not reaped it yet).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}
