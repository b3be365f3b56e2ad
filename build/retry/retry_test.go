package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDo(t *testing.T) {
	flaky := errors.New("503")
	tests := []struct {
		name      string
		errs      []error // what f returns on each call; nil after the list
		maxWait   time.Duration
		wantCalls int
		wantWaits []time.Duration
		wantErr   error
	}{
		{"first time", nil, 0, 1, nil, nil},
		{"second time", []error{flaky}, 0, 2, []time.Duration{time.Second}, nil},
		{"backoff doubles, attempts run out", []error{flaky, flaky, flaky, flaky}, 0, 3, []time.Duration{time.Second, 2 * time.Second}, flaky},
		{"permanent", []error{Permanent(flaky)}, 0, 1, nil, flaky},
		{"the wait asked for", []error{After(flaky, 7*time.Second)}, 0, 2, []time.Duration{7 * time.Second}, nil},
		{"a wait too long gives up", []error{After(flaky, 2*time.Hour)}, time.Hour, 1, nil, flaky},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			calls := 0
			p := Policy{Attempts: 3, Backoff: time.Second, MaxWait: tt.maxWait,
				Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }}
			err := p.Do(context.Background(), func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if err != tt.wantErr || calls != tt.wantCalls || len(waits) != len(tt.wantWaits) {
				t.Fatalf("err %v calls %d waits %v; want %v, %d, %v", err, calls, waits, tt.wantErr, tt.wantCalls, tt.wantWaits)
			}
			for i := range waits {
				if waits[i] != tt.wantWaits[i] {
					t.Errorf("wait %d = %s, want %s", i, waits[i], tt.wantWaits[i])
				}
			}
		})
	}
}

func TestDoStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Policy{Attempts: 5, Backoff: time.Hour}.Do(ctx, func() error {
		calls++
		cancel()
		return errors.New("network down")
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Errorf("err %v after %d calls", err, calls)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := (Policy{Attempts: 5, Backoff: time.Hour}).Do(ctx, func() error { return errors.New("x") }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a wait outlived its context: %v", err)
	}
}
