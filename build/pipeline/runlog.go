package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// RunLogName is dist's log of runs: one JSON line per build, with what varies between identical
// builds (when, how long, on what host). It is kept apart from the records and is not a release
// asset, so outputs and releases stay free of it.
const RunLogName = "runs.jsonl"

// RunEntry is one line of the run log.
type RunEntry struct {
	Target   string    `json:"target"` // "kernel", "rootfs <recipe>", "dist"
	Output   string    `json:"output"` // the version, recipe or tag made
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Phases   string    `json:"phases,omitempty"`
	Hostname string    `json:"hostname"`
	Kernel   string    `json:"host_kernel"`
	CPUs     int       `json:"cpus"`
	Go       string    `json:"go"`
}

// log appends the run's entry to dist's run log, unless the run is a step of another. The log is a
// convenience: failing to write it does not fail the run.
func (r *targetRun) log(target, output string, start time.Time, phases string) {
	if r.nested {
		return
	}
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	e := RunEntry{Target: target, Output: output, Started: start.UTC().Truncate(time.Second),
		Seconds: time.Since(start).Round(time.Millisecond).Seconds(), Phases: phases, Hostname: host,
		Kernel: strings.TrimSpace(string(kernel)), CPUs: runtime.NumCPU(), Go: runtime.Version()}
	line, err := json.Marshal(e)
	if err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(r.dist, RunLogName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}
