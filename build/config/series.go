package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
)

// AllSeries, as a series name, selects every pinned series.
const AllSeries = "all"

// seriesName is what a series is called: a branch such as 6.1, or stable, or mainline. It names a
// folder in dist/, so nothing else is let through.
var seriesName = regexp.MustCompile(`^([0-9]{1,3}\.[0-9]{1,3}|stable|mainline)$`)

// CheckSeries refuses anything but a series name.
func CheckSeries(name string) error {
	if !seriesName.MatchString(name) {
		return fmt.Errorf("series %.40q: want a kernel branch such as 6.1, or stable, or mainline", name)
	}
	return nil
}

// checkPins checks kernel.lock's [series."X"] tables: each a series name other than the default's,
// pinning a version of that branch.
func checkPins(def string, pins map[string]KernelPin) error {
	for name, pin := range pins {
		if err := CheckSeries(name); err != nil {
			return fmt.Errorf("%s [series.%.40q]: %w", LockName, name, err)
		}
		if name == def {
			return fmt.Errorf("%s [series.%q]: %s is the default series (kernel.series), pinned at the top of the file: remove the table", LockName, name, name)
		}
		if pin.Version == "" {
			return fmt.Errorf("%s [series.%q] has no version: run `go tool mage bump -series=%s`", LockName, name, name)
		}
		if numbered := name != "stable" && name != "mainline"; numbered && pin.Version != name && !strings.HasPrefix(pin.Version, name+".") {
			return fmt.Errorf("%s [series.%q] pins %.40q, not a release of %s", LockName, name, pin.Version, name)
		}
		if s := pin.SHA256; s != "" {
			if err := ident.SHA256(strings.ToLower(s)); err != nil {
				return fmt.Errorf("%s [series.%q]: %w", LockName, name, err)
			}
		}
	}
	return nil
}

// PinnedSeries are the series kernel.lock pins: the default first, then the others, newest branch
// first.
func (c Config) PinnedSeries() []string {
	others := make([]string, 0, len(c.OtherPins))
	for name := range c.OtherPins {
		others = append(others, name)
	}
	slices.SortFunc(others, func(a, b string) int { return compareSeries(b, a) })
	return append([]string{c.DefaultSeries}, others...)
}

// compareSeries orders branches by number, with stable and mainline after every number.
func compareSeries(a, b string) int {
	key := func(s string) [2]int {
		switch s {
		case "stable":
			return [2]int{1 << 20, 0}
		case "mainline":
			return [2]int{1 << 21, 0}
		}
		major, minor, _ := strings.Cut(s, ".")
		x, _ := strconv.Atoi(major)
		y, _ := strconv.Atoi(minor)
		return [2]int{x, y}
	}
	ka, kb := key(a), key(b)
	if ka[0] != kb[0] {
		return ka[0] - kb[0]
	}
	return ka[1] - kb[1]
}

// ForSeries is the configuration for one series: "" or the default series leave it as it is;
// another series gets its kernel.lock pin (empty if it has none yet, which `mage bump` fills in), its
// own folder dist/<series>/ for its kernel and releases, while root filesystems stay in dist/, and
// its own patch series patches/<series>/ when that folder has a series file (a backport), or else
// patches/.
func (c Config) ForSeries(name string) (Config, error) {
	if name == "" || name == c.DefaultSeries {
		return c, nil
	}
	if err := CheckSeries(name); err != nil {
		return Config{}, err
	}
	if c.Kernel.Tarball != "" || c.Kernel.Tree != "" {
		return Config{}, fmt.Errorf("series %s: kernel.tarball or kernel.tree names one source to build, which is not a pinned series: unset it to build series from kernel.lock", name)
	}
	c.Images = c.ImagesDir()
	c.Kernel.Series = name
	c.Pin = c.OtherPins[name]
	c.Paths.Dist = filepath.Join(c.Paths.Dist, name)
	if own := filepath.Join(c.Paths.Patches, name); files.Exists(filepath.Join(own, "series")) {
		c.Paths.Patches = own
	}
	return c, nil
}

// CheckPinned refuses to build a series kernel.lock does not pin (ForSeries lets one through, for
// `mage bump` to pin), naming the series it pins and how to pin this one.
func (c Config) CheckPinned() error {
	if c.Pin.Version != "" || c.Kernel.Series == c.DefaultSeries {
		return nil
	}
	err := ident.Unknown("series", c.Kernel.Series, LockName, c.PinnedSeries())
	return fmt.Errorf("%w (pin it with `go tool mage bump -series=%s`)", err, c.Kernel.Series)
}

// Select resolves a -series flag: "" is the default series, "all" every pinned series, anything else
// that one series.
func (c Config) Select(name string) ([]Config, error) {
	names := []string{name}
	if name == AllSeries {
		names = c.PinnedSeries()
	}
	out := make([]Config, 0, len(names))
	for _, n := range names {
		sc, err := c.ForSeries(n)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// ImagesDir is where the root filesystems are: dist/, whichever series is selected.
func (c Config) ImagesDir() string {
	if c.Images != "" {
		return c.Images
	}
	return c.Paths.Dist
}
