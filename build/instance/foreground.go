package instance

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/uml"
)

// Foreground lists the guests that simple-uml commands run in the foreground (boot, test, lab,
// kunit...), found by their run folders in use in tmp: each is named by the command that runs it.
func Foreground(tmp string) []Status {
	var out []Status
	for _, dir := range files.PrivateDirsInUse(tmp, uml.RunFolderPrefix) {
		owner, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), uml.RunFolderPrefix), "-", 2)[0])
		st := Status{Name: command(owner), Kind: "foreground", Running: true, State: State{Phase: "running", Supervisor: owner}}
		if pids := uml.RunFolderProcesses(dir); len(pids) > 0 {
			st.State.Kernel, st.Memory = pids[0], residentMemory(pids[0])
		}
		out = append(out, st)
	}
	return out
}

// command is how process pid was started, its program's base name first, shortened.
func command(pid int) string {
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(cmdline) == 0 {
		return "pid " + strconv.Itoa(pid)
	}
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	args[0] = filepath.Base(args[0])
	s := strings.Join(args, " ")
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return s
}
