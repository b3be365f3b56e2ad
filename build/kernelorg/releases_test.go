package kernelorg

import (
	"strings"
	"testing"
)

func TestSelectRealReleasesJSON(t *testing.T) {
	releases, err := ParseReleases(readFixture(t, "releases-2026-08-30.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		series, want, moniker string
		eol                   bool
	}{
		{"6.12", "6.12.107", "longterm", false},
		{"stable", "7.2.2", "stable", false},
		{"mainline", "7.3-rc1", "mainline", false},
		{"7.1", "7.1.12", "stable", false},
		{"5.10", "5.10.268", "longterm", false},
	}
	for _, tt := range tests {
		t.Run(tt.series, func(t *testing.T) {
			r, err := Select(releases, tt.series)
			if err != nil {
				t.Fatal(err)
			}
			if r.Version != tt.want || r.Moniker != tt.moniker || r.EOL != tt.eol {
				t.Errorf("got %+v, want %s (%s)", r, tt.want, tt.moniker)
			}
			if r.Released.IsZero() || r.Released.Year() < 2020 {
				t.Errorf("release date %v not read", r.Released)
			}
		})
	}
	if _, err := Select(releases, "2.6"); err == nil || !strings.Contains(err.Error(), `"2.6"`) {
		t.Errorf("unknown series: err = %v", err)
	}
	next, _ := Select(releases, "mainline")
	if next.PGP != "" {
		t.Errorf("mainline -rc has no pgp signature, got %q", next.PGP)
	}
}

func TestParseReleasesOldKeyOrder(t *testing.T) {
	releases, err := ParseReleases(readFixture(t, "releases-2020-12-14-excerpt.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(releases) != 2 {
		t.Fatalf("%d releases, want 2", len(releases))
	}
	for _, r := range releases {
		if r.Version == "" || r.Moniker == "" || r.Released.Year() != 2020 {
			t.Errorf("incomplete release %+v", r)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"6.12", "6.12.1", -1},
		{"6.12.9", "6.12.10", -1},
		{"6.13-rc1", "6.12.117", 1},
		{"6.13-rc1", "6.13", -1},
		{"6.13-rc2", "6.13-rc10", -1},
		{"7.0", "6.99.99", 1},
		{"6.12.117", "6.12.117", 0},
		{"garbage", "6.1", -1},
	}
	for _, tt := range tests {
		if got := CompareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareVersions(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareVersions(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestLayout(t *testing.T) {
	if got := TarballURL("https://cdn.kernel.org/pub/linux/kernel/", "6.12.117"); got != "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.12.117.tar.xz" {
		t.Errorf("TarballURL = %s", got)
	}
	if got := SumsURL("http://127.0.0.1:9/k", "10.1"); got != "http://127.0.0.1:9/k/v10.x/sha256sums.asc" {
		t.Errorf("SumsURL = %s", got)
	}
	if got := Series("6.12.117"); got != "6.12" {
		t.Errorf("Series = %s", got)
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"6.12.117", "7.3-rc1", "6.12", "1.2.3.4", "6.x", "-rc", "6.12-rc0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		nums, rc, err := ParseVersion(v)
		if err != nil {
			return
		}
		// Accepted versions are safe in file names and URLs and compare equal to themselves.
		if strings.ContainsAny(v, "/ \\\x00") || rc < 0 || nums[0] < 0 || CompareVersions(v, v) != 0 {
			t.Fatalf("accepted %q as %v rc%d", v, nums, rc)
		}
	})
}

func FuzzParseReleases(f *testing.F) {
	f.Add([]byte(`{"releases":[{"moniker":"stable","version":"6.1","released":{"timestamp":1}}]}`))
	f.Add([]byte(`{"releases":[{"moniker":"linux-next","version":"next-1","source":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseReleases(data)
		if err == nil && len(rs) == 0 {
			t.Fatal("no error and no releases")
		}
	})
}

// TestPick: the release a bump pins, from the real releases.json: the newest of a series, refused
// when end of life unless allowed; an exact version with its date when releases.json lists it and
// without one when it does not; a version that is not one refused.
func TestPick(t *testing.T) {
	releases, err := ParseReleases(readFixture(t, "releases-2026-08-30.json"))
	if err != nil {
		t.Fatal(err)
	}
	eol := append([]Release{}, releases...)
	for i := range eol {
		eol[i].EOL = eol[i].Version == "6.1.186"
	}
	tests := []struct {
		name            string
		releases        []Release
		series, version string
		allowEOL        bool
		want, wantErr   string
		wantDated       bool
	}{
		{name: "newest of the series", releases: releases, series: "6.12", want: "6.12.107", wantDated: true},
		{name: "end of life", releases: eol, series: "6.1", wantErr: "end of life"},
		{name: "end of life, allowed", releases: eol, series: "6.1", allowEOL: true, want: "6.1.186", wantDated: true},
		{name: "exact, listed", releases: releases, series: "6.12", version: "6.6.155", want: "6.6.155", wantDated: true},
		{name: "exact, older than listed", releases: releases, series: "6.12", version: "6.12.100", want: "6.12.100"},
		{name: "not a version", releases: releases, series: "6.12", version: "6.12.x", wantErr: `"x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Pick(tt.releases, tt.series, tt.version, tt.allowEOL)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %+v, %v; want an error with %q", r, err, tt.wantErr)
				}
				return
			}
			if err != nil || r.Version != tt.want || r.Released.IsZero() == tt.wantDated {
				t.Errorf("got %+v, %v; want %s (dated %v)", r, err, tt.want, tt.wantDated)
			}
		})
	}
}

func TestInSeries(t *testing.T) {
	tests := []struct {
		version, series string
		want            bool
	}{
		{"6.12.117", "6.12", true},
		{"6.12", "6.12", true},
		{"7.3-rc1", "7.3", true},
		{"6.1.150", "6.12", false},
		{"6.12.117", "6.1", false},
		{"6.6.155", "stable", true},
		{"7.3-rc1", "mainline", true},
	}
	for _, tt := range tests {
		if got := InSeries(tt.version, tt.series); got != tt.want {
			t.Errorf("InSeries(%q, %q) = %v, want %v", tt.version, tt.series, got, tt.want)
		}
	}
}
