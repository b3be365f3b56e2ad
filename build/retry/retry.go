// Package retry is the one retry loop of simple-uml: downloads and GitHub API calls retry what a
// second attempt can fix, with a doubling wait, or the wait the server asked for.
package retry

import (
	"context"
	"errors"
	"time"
)

// Policy says how often and how long to retry.
type Policy struct {
	Attempts int           // in all, the first included
	Backoff  time.Duration // the first wait, doubled after each failed attempt
	MaxWait  time.Duration // a wait asked for (After) longer than this gives up instead; 0: no bound
	// Sleep waits d or until ctx ends; nil is a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Log is told of each failed attempt before its wait; nil says nothing.
	Log func(err error, wait time.Duration, attempt, attempts int)
}

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// Permanent marks an error no retry can fix: Do returns it at once.
func Permanent(err error) error { return permanentError{err} }

type afterError struct {
	error
	wait time.Duration
}

func (e afterError) Unwrap() error { return e.error }

// After marks an error to retry after wait instead of the backoff: a rate limit says when.
func After(err error, wait time.Duration) error { return afterError{err, wait} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Do calls f until it returns nil, an error marked Permanent, the context ends or the attempts run
// out. It returns f's last error without the marks, or the context's error.
func (p Policy) Do(ctx context.Context, f func() error) error {
	wait := p.Backoff
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var after afterError
		delay := wait
		if errors.As(err, &after) {
			delay = after.wait
		}
		if IsPermanent(err) || attempt >= p.Attempts || (p.MaxWait > 0 && delay > p.MaxWait) {
			return unmark(err)
		}
		if p.Log != nil {
			p.Log(unmark(err), delay, attempt, p.Attempts)
		}
		if err := p.sleep(ctx, delay); err != nil {
			return err
		}
		wait *= 2
	}
}

// unmark removes the marks Do reads from the outside of err.
func unmark(err error) error {
	for {
		switch e := err.(type) {
		case permanentError:
			err = e.error
		case afterError:
			err = e.error
		default:
			return err
		}
	}
}

func (p Policy) sleep(ctx context.Context, d time.Duration) error {
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
