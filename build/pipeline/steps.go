package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// step is one named step of a target. skip, when set, is asked just before the step would run (what
// the steps before it found decides), and a skipped step is neither run nor timed.
type step struct {
	name string
	run  func(context.Context) error
	skip func() bool
}

// runSteps runs the steps in order, timing each, and stops at the first that fails or when the
// context ends.
func runSteps(ctx context.Context, timer *stepTimer, steps ...step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.skip != nil && s.skip() {
			continue
		}
		if err := s.run(ctx); err != nil {
			return err
		}
		timer.done(s.name)
	}
	return nil
}

// stepTimer records how long each step took, for the closing message and the run log.
type stepTimer struct {
	last  time.Time
	parts []string
}

func newStepTimer() *stepTimer { return &stepTimer{last: time.Now()} }

func (p *stepTimer) done(name string) {
	now := time.Now()
	p.parts = append(p.parts, fmt.Sprintf("%s %s", name, now.Sub(p.last).Round(time.Millisecond)))
	p.last = now
}

func (p *stepTimer) String() string { return strings.Join(p.parts, ", ") }
