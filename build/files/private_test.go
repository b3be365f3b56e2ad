package files

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// privateChild makes the test binary make a private folder in the given parent, print its path and
// wait to be killed (see TestMain).
const privateChild = "SUML_FILES_PRIVATE_CHILD"

func TestMain(m *testing.M) {
	if parent := os.Getenv(privateChild); parent != "" {
		p, err := NewPrivateDir(parent, "child-", nil)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(p.Path, "guest.cow"), []byte("written"), 0o600)
		fmt.Println(p.Path)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startPrivateChild starts a process that makes a private folder in parent, and returns it and
// the folder's path.
func startPrivateChild(t *testing.T, parent string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), privateChild+"="+parent)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := bufio.NewScanner(out)
	line.Scan()
	if !filepath.IsAbs(line.Text()) {
		t.Fatalf("the child printed %q", line.Text())
	}
	return cmd, line.Text()
}

// A private folder outlives a killed run only until the next one makes its own; a running run's
// (its owner file replaced from inside), a kept one, one with no owner file or with a link for it,
// and what is not a folder stay.
func TestPrivateDirSweep(t *testing.T) {
	parent := t.TempDir()
	killed, killedDir := startPrivateChild(t, parent)
	_, runningDir := startPrivateChild(t, parent)
	// What a guest may do in its run folder: replace the owner file with one nobody holds.
	os.Remove(filepath.Join(runningDir, OwnerFile))
	os.WriteFile(filepath.Join(runningDir, OwnerFile), nil, 0o600)
	kept, err := NewPrivateDir(parent, "kept-", nil)
	if err != nil {
		t.Fatal(err)
	}
	kept.Keep()
	foreign := filepath.Join(parent, "not-ours")
	linked := filepath.Join(parent, "linked")
	victim := filepath.Join(t.TempDir(), "owner")
	for _, dir := range []string{foreign, linked} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(victim, nil, 0o600)
	os.Symlink(victim, filepath.Join(linked, OwnerFile))
	os.WriteFile(filepath.Join(parent, "a-file"), nil, 0o600)

	killed.Process.Kill()
	killed.Wait()
	var left []string
	mine, err := NewPrivateDir(parent, "boot-", func(dir string) { left = append(left, dir) })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{killedDir, false}, {runningDir, true}, {kept.Path, true}, {foreign, true}, {linked, true},
		{victim, true}, {filepath.Join(parent, "a-file"), true}, {mine.Path, true},
	} {
		if _, err := os.Lstat(c.path); (err == nil) != c.want {
			t.Errorf("%s: exists %v, want %v", c.path, err == nil, c.want)
		}
	}
	if len(left) != 1 || left[0] != killedDir {
		t.Errorf("told of the folders left %v, want %s alone", left, killedDir)
	}
	if filepath.Base(mine.Path)[:len("boot-")] != "boot-" || !Exists(filepath.Join(mine.Path, OwnerFile)) {
		t.Errorf("new private folder %s: wrong name, or no owner file", mine.Path)
	}
	if got := PrivateDirsInUse(parent, "child-"); len(got) != 1 || got[0] != runningDir {
		t.Errorf("in use: %v, want the running child's %s alone", got, runningDir)
	}
	if err := mine.Remove(); err != nil || Exists(mine.Path) {
		t.Errorf("Remove: %v, folder left: %v", err, Exists(mine.Path))
	}
	if err := mine.Remove(); err != nil {
		t.Errorf("a second Remove: %v", err)
	}
}
