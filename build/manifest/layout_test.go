package manifest

import (
	"strings"
	"testing"
	"time"
)

func TestBuildTime(t *testing.T) {
	tests := []struct {
		env     []string
		want    time.Time
		wantErr string
	}{
		{[]string{"ARCH=um", "KBUILD_BUILD_TIMESTAMP=Sat, 14 Nov 2026 12:56:01 +0100"}, time.Date(2026, 11, 14, 11, 56, 1, 0, time.UTC), ""},
		{[]string{"KBUILD_BUILD_TIMESTAMP=yesterday"}, time.Time{}, `KBUILD_BUILD_TIMESTAMP "yesterday"`},
		{nil, time.Time{}, "set SOURCE_DATE_EPOCH"},
	}
	for _, tt := range tests {
		got, err := (&KernelRecord{BuildEnv: tt.env}).BuildTime()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v, want %q", tt.env, err, tt.wantErr)
			}
		} else if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%q: %v, %v; want %v", tt.env, got, err, tt.want)
		}
	}
}
