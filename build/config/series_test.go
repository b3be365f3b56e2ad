package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const twoSeriesLock = `version = "6.12.117"
sha256 = ""
released = ""

[series."6.1"]
version = "6.1.192"
sha256 = ""
released = ""

[series."6.6"]
version = "6.6.60"
sha256 = ""
released = ""
`

func TestSeriesLock(t *testing.T) {
	tests := []struct {
		name    string
		lock    string
		wantErr string
	}{
		{name: "two other series", lock: twoSeriesLock},
		{name: "the default series again", lock: "version = \"6.12.117\"\n[series.\"6.12\"]\nversion = \"6.12.118\"\n", wantErr: "6.12 is the default series"},
		{name: "a version of another branch", lock: "version = \"6.12.117\"\n[series.\"6.1\"]\nversion = \"6.12.3\"\n", wantErr: `pins "6.12.3", not a release of 6.1`},
		{name: "no version", lock: "version = \"6.12.117\"\n[series.\"6.1\"]\nsha256 = \"\"\n", wantErr: "go tool mage bump -series=6.1"},
		{name: "a path as a series", lock: "version = \"6.12.117\"\n[series.\"../../etc\"]\nversion = \"6.1.1\"\n", wantErr: "want a kernel branch"},
		{name: "a bad digest", lock: "version = \"6.12.117\"\n[series.\"6.1\"]\nversion = \"6.1.1\"\nsha256 = \"xyz\"\n", wantErr: "series.\"6.1\""},
		{name: "an unknown key", lock: "version = \"6.12.117\"\n[series.\"6.1\"]\nversion = \"6.1.1\"\nsha = \"\"\n", wantErr: `unknown key(s) series."6.1".sha`},
		{name: "stable beside a branch", lock: "version = \"6.12.117\"\n[series.stable]\nversion = \"6.17.9\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeRoot(t, "", tt.lock), envOf(map[string]string{"HOME": "/h"}))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

func TestForSeries(t *testing.T) {
	root := writeRoot(t, "", twoSeriesLock)
	os.MkdirAll(filepath.Join(root, "patches", "6.1"), 0o755)
	os.WriteFile(filepath.Join(root, "patches", "6.1", "series"), []byte("0001-backport.patch\n"), 0o644)
	cfg, err := Load(root, envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(root, "dist")
	if got, want := cfg.PinnedSeries(), []string{"6.12", "6.6", "6.1"}; !slices.Equal(got, want) {
		t.Errorf("pinned series %q, want %q (default first, newest next)", got, want)
	}
	tests := []struct {
		series, version, dist, wantErr string
	}{
		{series: "", version: "6.12.117", dist: dist},
		{series: "6.12", version: "6.12.117", dist: dist},
		{series: "6.1", version: "6.1.192", dist: filepath.Join(dist, "6.1")},
		{series: "6.6", version: "6.6.60", dist: filepath.Join(dist, "6.6")},
		// Not pinned yet: `mage bump -series=5.15` pins it; a build says the pin is missing.
		{series: "5.15", version: "", dist: filepath.Join(dist, "5.15")},
		{series: "../6.1", wantErr: "want a kernel branch"},
		{series: "6.1/..", wantErr: "want a kernel branch"},
	}
	for _, tt := range tests {
		c, err := cfg.ForSeries(tt.series)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ForSeries(%q): err = %v, want %q", tt.series, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ForSeries(%q): %v", tt.series, err)
			continue
		}
		if c.Pin.Version != tt.version || c.Paths.Dist != tt.dist || c.ImagesDir() != dist || c.DefaultSeries != "6.12" {
			t.Errorf("ForSeries(%q): pin %s, dist %s, images %s, default %s; want %s, %s, %s, 6.12", tt.series, c.Pin.Version, c.Paths.Dist, c.ImagesDir(), c.DefaultSeries, tt.version, tt.dist, dist)
		}
		if tt.series != "" && c.Kernel.Series != tt.series {
			t.Errorf("ForSeries(%q): kernel.series %s", tt.series, c.Kernel.Series)
		}
		// 6.1 has a patch series of its own (a backport); the others take patches/.
		wantPatches := filepath.Join(root, "patches")
		if tt.series == "6.1" {
			wantPatches = filepath.Join(wantPatches, "6.1")
		}
		if c.Paths.Patches != wantPatches {
			t.Errorf("ForSeries(%q): patches %s, want %s", tt.series, c.Paths.Patches, wantPatches)
		}
	}
	all, err := cfg.Select(AllSeries)
	if err != nil || len(all) != 3 || all[0].Pin.Version != "6.12.117" || all[2].Pin.Version != "6.1.192" {
		t.Errorf("Select(all) = %d configurations, %v", len(all), err)
	}
	tarball := cfg
	tarball.Kernel.Tarball = "/usr/src/linux-source-6.12.tar.xz"
	if _, err := tarball.ForSeries("6.1"); err == nil || !strings.Contains(err.Error(), "kernel.tarball") {
		t.Errorf("a series with kernel.tarball set: err = %v", err)
	}
}

// TestCheckPinned: a series kernel.lock does not pin is refused by name, with the ones it pins.
func TestCheckPinned(t *testing.T) {
	cfg, err := Load(writeRoot(t, "", twoSeriesLock), envOf(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ series, wantErr string }{
		{series: ""},
		{series: "6.12"},
		{series: "6.1"},
		{series: "9.9", wantErr: `unknown series "9.9" in kernel.lock: 6.12, 6.6, 6.1 (pin it with ` + "`go tool mage bump -series=9.9`)"},
		{series: "mainline", wantErr: `unknown series "mainline" in kernel.lock: 6.12, 6.6, 6.1`},
	}
	for _, tt := range tests {
		c, err := cfg.ForSeries(tt.series)
		if err != nil {
			t.Fatalf("ForSeries(%q): %v", tt.series, err)
		}
		err = c.CheckPinned()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("series %q: err = %v, want %q", tt.series, err, tt.wantErr)
		}
	}
}
