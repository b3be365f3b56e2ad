package instance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/lan"
	"github.com/simple-uml/simple-uml/build/uml"
)

// A lab instance runs its lab as one unit: a guest that goes down (powered off or panicked) takes
// the lab down with it, and the restart policy brings the whole lab back, its guests' disks kept.

// bootLab runs the lab instance's lab until ctx ends (stop) or one of its guests goes down, and
// returns how it ended, as bootOnce does.
func (s *supervisor) bootLab(ctx context.Context) (string, string, error) {
	if err := s.setPhase(PhaseStarting, ""); err != nil {
		return "", "", err
	}
	runs := filepath.Join(s.dir, runsDir)
	if err := pruneRuns(runs); err != nil {
		return "", "", err
	}
	o := lab.Options{Guest: s.spec.Options, Image: s.labImage, Runs: runs, Disks: filepath.Join(s.dir, disksDir),
		Logs: filepath.Join(s.dir, logsDir), LogMax: consoleLogMax, Ready: s.spec.Ready, Timeout: s.spec.Options.Timeout, Log: s.log}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if s.spec.LabGuest != "" {
		tunnel, err := s.openTunnel()
		if err != nil {
			return PhaseCrashed, err.Error(), nil
		}
		defer tunnel.Close()
		o.Only, o.Console, o.ForwardAddress = s.spec.LabGuest, s.echo, containerForwards
		o.Join = func(index int, l *lan.LAN) error {
			return tunnel.Join(l, uint32(index+1), labPeers(s.spec.Lab, index, s.spec.LabGuest))
		}
	}
	r, err := lab.Start(ctx, s.spec.Lab, o)
	if err != nil && ctx.Err() != nil {
		return PhaseStopped, "", nil
	} else if err != nil {
		return PhaseCrashed, err.Error(), nil
	}
	defer r.Stop()                 // also when a stop came as Start returned: the loop below sees it at once
	record, err := r.Record(s.dir) // what console <lab>/<guest> reads
	if err != nil {
		return "", "", err
	}
	defer os.Remove(record)
	s.setLab(r)
	defer s.setLab(nil)
	if s.spec.LabGuest != "" {
		checking, stopChecking := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.checkLab(checking, r) }()
		defer func() { stopChecking(); <-done }() // before the lab stops
	}
	fmt.Fprintf(s.log, "[simple-uml: lab %s is up: %s; consoles logged in %s]\n", s.spec.Lab.Name, strings.Join(s.spec.Lab.GuestNames(), ", "), filepath.Join(s.dir, logsDir))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return PhaseStopped, "", nil
		case <-tick.C:
			if down := r.Down(); len(down) > 0 {
				fmt.Fprintf(s.log, "[simple-uml: lab %s: %s]\n", s.spec.Lab.Name, strings.Join(down, "; "))
				return PhaseCrashed, strings.Join(down, "; "), nil
			}
		}
	}
}

// Bounds on checkLab: how long a lab guest's container tries its checks, and how long it waits
// between tries.
const (
	checkFor   = 3 * time.Minute
	checkEvery = 5 * time.Second
)

// checkLab runs, in a lab guest's container, the lab's checks of its guest until they all pass
// (the other guests' pods come up in their own time: a check across them fails until then) or
// checkFor has passed, and records what they found in the state (`simple-uml-guest checks`).
func (s *supervisor) checkLab(ctx context.Context, r *lab.Running) {
	if !slices.ContainsFunc(s.spec.Lab.Checks, func(c lab.Check) bool { return c.Guest == s.spec.LabGuest }) {
		return
	}
	deadline := time.Now().Add(checkFor)
	for {
		results, err := r.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		passed := err == nil && !slices.ContainsFunc(results, func(c uml.CheckResult) bool { return !c.OK })
		if err != nil {
			results = append(results, uml.CheckResult{Name: "the checks could run", Detail: err.Error()})
		}
		if passed || time.Now().After(deadline) {
			s.mu.Lock()
			s.state.Checks = results
			writeState(s.dir, s.state)
			s.mu.Unlock()
			fmt.Fprintf(s.log, "[simple-uml: lab %s, guest %s: checks %s]\n", s.spec.Lab.Name, s.spec.LabGuest, map[bool]string{true: "passed", false: "failed"}[passed])
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkEvery):
		}
	}
}

// openTunnel listens for the VXLAN tunnel of a lab guest's container, on every address of its pod.
func (s *supervisor) openTunnel() (*lan.Tunnel, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{Port: lan.VXLANPort})
	if err != nil {
		return nil, fmt.Errorf("the lab's tunnel: %w", err)
	}
	return lan.NewTunnel(conn, nil), nil
}

// labPeers are the guests of l other than guest on its LAN at index, by the names of their pods:
// the Service's that build/kube writes for each, then the one podman kube play gives a
// Deployment's pod (it resolves no Service).
func labPeers(l *lab.Lab, index int, guest string) []lan.Peer {
	var peers []lan.Peer
	for _, g := range l.Guests {
		if g.Name == guest || !slices.ContainsFunc(g.Interfaces, func(i lab.Interface) bool { return i.LAN == l.LANs[index].Name }) {
			continue
		}
		name := LabWorkload(l.Name, g.Name)
		peers = append(peers, lan.Peer{Names: []string{name, name + "-pod-0"}, Port: lan.VXLANPort})
	}
	return peers
}

// labImage is what a guest of the lab boots: the instance's copy of its image.
func (s *supervisor) labImage(g lab.Guest) (lab.Image, error) {
	img, ok := s.spec.LabImages[g.Name]
	if !ok {
		return img, fmt.Errorf("the instance's spec has no image for guest %s: `go tool mage rm %s` and up it again", g.Name, s.spec.Name)
	}
	return img, nil
}

// setLab records the running lab r (nil: none) and marks the instance ready.
func (s *supervisor) setLab(r *lab.Running) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Guests, s.state.Kernel, s.state.Checks = nil, 0, nil
	if r == nil {
		return
	}
	for _, g := range s.spec.Lab.Guests {
		if pid := r.Pid(g.Name); pid > 0 { // a lab guest's container boots one
			s.state.Guests = append(s.state.Guests, pid)
		}
	}
	s.state.Phase, s.state.Started, s.state.Run = PhaseReady, time.Now(), r.Dir
	writeState(s.dir, s.state)
}

// pruneRuns removes the lab run folders in runs but the newest: the last run's consoles stay to be
// read after a crash, and no more pile up.
func pruneRuns(runs string) error {
	entries, err := os.ReadDir(runs)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	modified := func(e os.DirEntry) time.Time {
		fi, err := e.Info()
		if err != nil {
			return time.Time{}
		}
		return fi.ModTime()
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return modified(a).Compare(modified(b)) })
	for _, e := range entries[:max(len(entries)-1, 0)] {
		if err := files.RemoveAllWritable(filepath.Join(runs, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// labGuest checks that the lab instance with spec has guest; the error lists its guests.
func labGuest(spec Spec, guest string) error {
	if spec.Lab == nil {
		return fmt.Errorf("instance %s is a guest, not a lab: leave out /%s", spec.Name, guest)
	}
	if !slices.Contains(spec.Lab.GuestNames(), guest) {
		return fmt.Errorf("lab instance %s has no guest %q: its guests are %s", spec.Name, guest, strings.Join(spec.Lab.GuestNames(), ", "))
	}
	return nil
}

// ConsoleGuest attaches the terminal in/out to guest's console in the lab instance in dir, until
// Ctrl-].
func ConsoleGuest(ctx context.Context, dir, guest string, in *os.File, out io.Writer) error {
	spec, err := readSpec(dir)
	if err != nil {
		return err
	}
	if err := labGuest(spec, guest); err != nil {
		return err
	}
	if !running(dir) || readState(dir).Phase != PhaseReady {
		return fmt.Errorf("lab instance %s is not up: `go tool mage up %s` starts it", spec.Name, spec.Name)
	}
	return lab.AttachGuest(ctx, dir, spec.Lab, guest, in, out)
}
