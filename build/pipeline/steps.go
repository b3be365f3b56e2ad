package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// step is one named step of a target. skip, when set, is asked just before the step would run (what
// the steps before it found decides), and a skipped step is not run.
type step struct {
	name string
	run  func(context.Context) error
	skip func() bool
}

// runSteps runs the steps in order, timing each, and stops at the first that fails, whose error it
// names the step in, or when the context ends. A skipped step is noted in the timings.
func runSteps(ctx context.Context, timer *stepTimer, steps ...step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.skip != nil && s.skip() {
			timer.skipped(s.name)
			continue
		}
		if err := s.run(ctx); err != nil {
			return &StepError{Step: s.name, Err: err}
		}
		timer.done(s.name)
	}
	return nil
}

// StepError is the error of the step of a target that failed.
type StepError struct {
	Step string
	Err  error
}

// Error names the step, unless the cause already begins with its name ("configure kernel 6.12...").
func (e *StepError) Error() string {
	if msg := e.Err.Error(); strings.HasPrefix(msg, e.Step+" ") || strings.HasPrefix(msg, e.Step+":") {
		return msg
	}
	return e.Step + " step: " + e.Err.Error()
}
func (e *StepError) Unwrap() error { return e.Err }

// stepTimer records how long each step took, and which were skipped, for the closing message and the
// run log.
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

func (p *stepTimer) skipped(name string) {
	p.parts = append(p.parts, name+" skipped")
	p.last = time.Now()
}

func (p *stepTimer) String() string { return strings.Join(p.parts, ", ") }
