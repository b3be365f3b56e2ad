package config

import (
	"strings"
	"testing"
)

func TestSourceDateEpoch(t *testing.T) {
	tests := []struct {
		value   string
		ok      bool
		unix    int64
		wantErr string
	}{
		{"", false, 0, ""},
		{"1794660961", true, 1794660961, ""},
		{"yesterday", false, 0, "want seconds since 1970"},
	}
	for _, tt := range tests {
		got, ok, err := SourceDateEpoch(func(string) string { return tt.value })
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: %v", tt.value, err)
			}
			continue
		}
		if err != nil || ok != tt.ok || (ok && got.Unix() != tt.unix) {
			t.Errorf("%q: %v %v %v", tt.value, got, ok, err)
		}
	}
}
