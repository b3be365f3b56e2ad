package uml

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// maxScript bounds a check script: it is typed into the guest's console.
const maxScript = 64 << 10

// RunScripts copies each of the user's scripts into the logged-in guest, runs it there as root and
// reads what it prints as KTAP or TAP; a script that prints neither is one test, passed by its exit
// status. A script that exits non-zero fails even when its tests passed.
func (g *Guest) RunScripts(ctx context.Context, scripts []string, timeout time.Duration, w io.Writer) ([]*ktap.Test, error) {
	var results []*ktap.Test
	for i, path := range scripts {
		data, err := readScript(path)
		if err != nil {
			return results, err
		}
		inGuest := fmt.Sprintf("/tmp/suml-script-%d", i+1)
		if err := g.WriteFile(ctx, inGuest, data, timeout); err != nil {
			return results, fmt.Errorf("script %s: %w", path, err)
		}
		out, status, err := g.Run(ctx, inGuest+" 2>&1", timeout)
		if err != nil {
			return results, fmt.Errorf("script %s: %w", path, err)
		}
		t := ktap.ScriptResult(filepath.Base(path), out, status)
		results = append(results, t)
		ktap.PrintResult(w, "script", t)
	}
	return results, nil
}

func readScript(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("test script: %w (test.scripts, or -script)", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxScript {
		return nil, fmt.Errorf("test script %s: want a regular file of %d KiB at most", path, maxScript>>10)
	}
	return os.ReadFile(path)
}
