package run

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/peer"
)

// startTiedAndChurn starts `sleep 33` tied to this process, prints its pid, then makes Go end
// threads (goroutines that return locked to theirs), and waits to be killed. A parent-death signal
// bound to whatever thread started the process would fire here.
func startTiedAndChurn() int {
	tied, err := StartTied(exec.Command("sleep", "33"))
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
	fmt.Println("churned")
	time.Sleep(time.Minute) // until killed
	return 0
}

// A tied process lives while this program does, however many threads Go ends meanwhile, and dies
// when it is killed.
func TestStartTiedDiesWithItsParentOnly(t *testing.T) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), "SUML_RUN_CHILD=tied")
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
	time.Sleep(200 * time.Millisecond)
	if !peer.Alive(pid) {
		t.Fatal("the tied process died while its parent lived (its starting thread ended)")
	}
	parent.Process.Kill()
	parent.Wait()
	for deadline := time.Now().Add(5 * time.Second); peer.Alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tied process outlived its killed parent")
		}
	}
}
