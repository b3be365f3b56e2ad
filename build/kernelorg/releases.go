// Package kernelorg knows kernel.org: releases.json, the download layout under pub/linux/kernel, and
// the clearsigned sha256sums.asc that vouches for every tarball. Parsers take bytes and return plain
// values; nothing here touches the network.
package kernelorg

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Release is one entry of releases.json.
type Release struct {
	Moniker  string    // mainline, stable, longterm or linux-next
	Version  string    // e.g. 6.12.117 or 7.3-rc1
	EOL      bool      // the series gets no more releases
	Released time.Time // UTC
	Source   string    // tarball URL; empty for linux-next
	PGP      string    // detached signature URL; empty for -rc and linux-next
}

type releasesDoc struct {
	LatestStable struct {
		Version string `json:"version"`
	} `json:"latest_stable"`
	Releases []struct {
		Moniker  string `json:"moniker"`
		Version  string `json:"version"`
		IsEOL    bool   `json:"iseol"`
		Released struct {
			Timestamp int64 `json:"timestamp"`
		} `json:"released"`
		Source *string `json:"source"`
		PGP    *string `json:"pgp"`
	} `json:"releases"`
}

// ParseReleases reads releases.json (any key order).
func ParseReleases(data []byte) ([]Release, error) {
	var doc releasesDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("releases.json: %w", err)
	}
	if len(doc.Releases) == 0 {
		return nil, fmt.Errorf("releases.json: no releases listed")
	}
	out := make([]Release, 0, len(doc.Releases))
	for _, r := range doc.Releases {
		if r.Version == "" || r.Moniker == "" {
			return nil, fmt.Errorf("releases.json: entry without version or moniker")
		}
		rel := Release{
			Moniker:  r.Moniker,
			Version:  r.Version,
			EOL:      r.IsEOL,
			Released: time.Unix(r.Released.Timestamp, 0).UTC(),
		}
		if r.Source != nil {
			rel.Source = *r.Source
		}
		if r.PGP != nil {
			rel.PGP = *r.PGP
		}
		out = append(out, rel)
	}
	return out, nil
}

// Select returns the release that tracks series: "mainline" or "stable" (the newest of that moniker), or
// a branch such as "6.12" (the release whose version is 6.12 or 6.12.N).
func Select(releases []Release, series string) (Release, error) {
	var best *Release
	for i := range releases {
		r := &releases[i]
		var match bool
		switch series {
		case "mainline", "stable":
			match = r.Moniker == series
		default:
			match = r.Moniker != "linux-next" && (r.Version == series || strings.HasPrefix(r.Version, series+"."))
		}
		if match && (best == nil || CompareVersions(r.Version, best.Version) > 0) {
			best = r
		}
	}
	if best == nil {
		return Release{}, fmt.Errorf("releases.json lists no release of series %q: set kernel.series to a branch kernel.org lists (e.g. 6.12), \"stable\" or \"mainline\"", series)
	}
	return *best, nil
}

// Pick is the release to pin from releases: version exactly when given (releases.json lists only
// the newest of each branch, so an older one has no date), else the newest of series, which must not
// be end of life unless allowEOL.
func Pick(releases []Release, series, version string, allowEOL bool) (Release, error) {
	if version == "" {
		rel, err := Select(releases, series)
		if err == nil && rel.EOL && !allowEOL {
			err = fmt.Errorf("series %s is end of life at kernel.org (last release %s): track a maintained series in kernel.series, or allow it explicitly (go tool mage bump -allowEOL)", series, rel.Version)
		}
		return rel, err
	}
	if _, _, err := ParseVersion(version); err != nil {
		return Release{}, err
	}
	for _, r := range releases {
		if r.Version == version {
			return r, nil
		}
	}
	return Release{Version: version}, nil
}

// InSeries says whether version belongs to series: its branch, or stable or mainline, which any
// version may be.
func InSeries(version, series string) bool {
	return series == "stable" || series == "mainline" || Series(version) == series
}

// Series returns the branch of a version: 6.12 for 6.12.117, 7.3 for 7.3-rc1.
func Series(version string) string {
	v, _, _ := strings.Cut(version, "-")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// ParseVersion splits a release version (MAJOR.MINOR[.PATCH][-rcN]) into numbers; rc is 0 for a final
// release. It rejects anything else, so that a version can be used safely in file names and URLs.
func ParseVersion(v string) (nums [3]int, rc int, err error) {
	base, pre, hasPre := strings.Cut(v, "-")
	if hasPre {
		n, ok := strings.CutPrefix(pre, "rc")
		if !ok {
			return nums, 0, fmt.Errorf("version %q: only -rcN suffixes are known", v)
		}
		rc, err = strconv.Atoi(n)
		if err != nil || rc <= 0 {
			return nums, 0, fmt.Errorf("version %q: bad -rc number", v)
		}
	}
	parts := strings.Split(base, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return nums, 0, fmt.Errorf("version %q: want MAJOR.MINOR or MAJOR.MINOR.PATCH", v)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p != strconv.Itoa(n) {
			return nums, 0, fmt.Errorf("version %q: %q is not a number", v, p)
		}
		nums[i] = n
	}
	return nums, rc, nil
}

// CompareVersions orders kernel versions: 6.12 < 6.12.1 < 6.13-rc1 < 6.13. Unparseable versions sort first.
func CompareVersions(a, b string) int {
	na, rca, erra := ParseVersion(a)
	nb, rcb, errb := ParseVersion(b)
	switch {
	case erra != nil && errb != nil:
		return strings.Compare(a, b)
	case erra != nil:
		return -1
	case errb != nil:
		return 1
	}
	for i := range na {
		if na[i] != nb[i] {
			if na[i] < nb[i] {
				return -1
			}
			return 1
		}
	}
	// A final release (rc 0) comes after its release candidates.
	key := func(rc int) int {
		if rc == 0 {
			return 1 << 30
		}
		return rc
	}
	switch {
	case key(rca) < key(rcb):
		return -1
	case key(rca) > key(rcb):
		return 1
	}
	return 0
}

// TarballName is the kernel.org file name of a release's xz tarball.
func TarballName(version string) string { return "linux-" + version + ".tar.xz" }

// Dir is the directory of a release under the mirror's base URL, e.g. v6.x.
func Dir(version string) string {
	major, _, _ := strings.Cut(version, ".")
	return "v" + major + ".x"
}

// TarballURL and SumsURL build download addresses under a mirror's pub/linux/kernel base URL.
func TarballURL(mirror, version string) string {
	return strings.TrimRight(mirror, "/") + "/" + Dir(version) + "/" + TarballName(version)
}

// SumsURL is the signed checksum list of a release's directory.
func SumsURL(mirror, version string) string {
	return strings.TrimRight(mirror, "/") + "/" + Dir(version) + "/sha256sums.asc"
}
