// Package config is the one place settings come from: simple-uml.toml at the top of the repository,
// kernel.lock beside it for the pinned kernel, and SUML_* environment variables that override any key.
// Settings come from here; the exceptions that read the environment themselves are standard
// variables, not settings: SOURCE_DATE_EPOCH (mage dist) and GITHUB_* (publishing and fetching). What
// changes one run only (a recipe, a tag, a dry run) is a flag of its mage target, not a setting.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"

	"github.com/simple-uml/simple-uml/build/ident"
)

// FileName and LockName are the configuration and lock files at the repository root.
const (
	FileName = "simple-uml.toml"
	LockName = "kernel.lock"
)

// The tables of simple-uml.toml. Settings says what each key means, its default and its environment
// variable.

// Kernel is the [kernel] table.
type Kernel struct {
	Series      string   `toml:"series"`
	Mirror      string   `toml:"mirror"`
	ReleasesURL string   `toml:"releases_url"`
	Tarball     string   `toml:"tarball"`
	Tree        string   `toml:"tree"`
	KunitConfig []string `toml:"kunitconfig"` // relative to Tree when set: resolved by the build, not here
	TrustedKeys []string `toml:"trusted_keys"`
	Keys        []string `toml:"keys"`
	Subarch     string   `toml:"subarch"`
	Profile     string   `toml:"profile"`
	Jobs        int      `toml:"jobs"`
	CCWrapper   string   `toml:"cc_wrapper"`

	// CCacheRemote is ccache's remote storage (with CCWrapper "ccache").
	CCacheRemote string `toml:"ccache_remote"`
}

// Rootfs is the [rootfs] table.
type Rootfs struct {
	Recipe    string `toml:"recipe"`
	Kernel    string `toml:"kernel"`
	Downloads int    `toml:"downloads"`
}

// Boot is the [boot] table: how `mage boot` and `mage test` run the guest.
type Boot struct {
	Recipe     string `toml:"recipe"`
	Mem        string `toml:"mem"`
	Args       string `toml:"args"`
	Hostfs     string `toml:"hostfs"`
	Net        string `toml:"net"`
	HostAccess bool   `toml:"host_access"`
	Forward    string `toml:"forward"`
	COW        string `toml:"cow"`
	Ready      string `toml:"ready"`
	Timeout    int    `toml:"timeout"`
	Sandbox    string `toml:"sandbox"`
}

// Test is the [test] table: what `mage test` runs in the guest besides its own checks.
type Test struct {
	Scripts []string `toml:"scripts"`
}

// Release is the [release] table.
type Release struct {
	Revision int    `toml:"revision"`
	Previous string `toml:"previous"`
	Registry string `toml:"registry"`
}

// Paths is the [paths] table. Relative paths are relative to the repository root.
type Paths struct {
	Dist      string `toml:"dist"`
	Cache     string `toml:"cache"`
	Downloads string `toml:"downloads"`
	Patches   string `toml:"patches"`
	Fragments string `toml:"kconfig"`
	Recipes   string `toml:"recipes"`
	Labs      string `toml:"labs"`
	State     string `toml:"state"`
}

// KernelPin is one series' pin in kernel.lock: the kernel `mage kernel` builds. `mage bump` rewrites it.
type KernelPin struct {
	Version  string `toml:"version"`  // e.g. 6.12.117
	SHA256   string `toml:"sha256"`   // of linux-<version>.tar.xz; empty: taken from the signed sha256sums.asc
	Released string `toml:"released"` // release date (YYYY-MM-DD), informational
}

// lockFile is kernel.lock: the default series' pin (kernel.series) at the top, as it always was, and a
// [series."<series>"] table for each other series kept alive beside it.
type lockFile struct {
	KernelPin
	Series map[string]KernelPin `toml:"series"`
}

// DecodeLock reads kernel.lock's content: the default series' pin and the other series' pins.
func DecodeLock(data []byte) (KernelPin, map[string]KernelPin, error) {
	var lock lockFile
	md, err := toml.Decode(string(data), &lock)
	if err != nil {
		return KernelPin{}, nil, err
	}
	if und := md.Undecoded(); len(und) > 0 {
		return KernelPin{}, nil, fmt.Errorf("unknown key %s", und[0])
	}
	return lock.KernelPin, lock.Series, nil
}

// Config is everything the pipeline needs, with paths made absolute.
type Config struct {
	Root    string // repository root
	Kernel  Kernel
	Rootfs  Rootfs
	Boot    Boot
	Test    Test
	Release Release
	Paths   Paths
	Pin     KernelPin // the selected series' pin: the default series', unless ForSeries chose another
	Notes   []string  // what a person should know about the settings read, such as an old variable name

	// DefaultSeries is kernel.series: the series whose kernel and releases dist/ itself holds, and
	// the only one whose releases become the repository's latest.
	DefaultSeries string
	// OtherPins are kernel.lock's other series, by series; ForSeries selects one.
	OtherPins map[string]KernelPin
	// Images is where the root filesystems are, shared by every series: dist/. Empty means
	// Paths.Dist; read it with ImagesDir.
	Images string
}

// Defaults are used for keys the file leaves out: each Setting's default.
func Defaults() Config {
	var c Config
	for _, s := range Settings {
		s.setDefault(&c)
	}
	return c
}

// Load reads root/simple-uml.toml and root/kernel.lock, applies getenv overrides (os.Getenv when nil)
// and checks the result.
func Load(root string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return Config{}, err
	}
	c := Defaults()
	c.Root = abs
	if err := decodeStrict(filepath.Join(abs, FileName), &c); err != nil {
		return Config{}, err
	}
	var lock lockFile
	if err := decodeStrict(filepath.Join(abs, LockName), &lock); err != nil {
		return Config{}, err
	}
	c.Pin, c.OtherPins = lock.KernelPin, lock.Series
	if err := c.applyEnv(getenv); err != nil {
		return Config{}, err
	}
	c.DefaultSeries = c.Kernel.Series
	if c.Paths.State == "" {
		c.Paths.State = defaultState(getenv)
	}
	if c.Paths.Cache == "" {
		c.Paths.Cache = defaultCache(getenv)
	}
	if c.Paths.Downloads == "" {
		c.Paths.Downloads = filepath.Join(c.Paths.Cache, "downloads")
	}
	if c.Boot.Recipe == "" {
		c.Boot.Recipe = c.Rootfs.Recipe
	}
	for _, p := range []*string{&c.Paths.Dist, &c.Paths.Cache, &c.Paths.Downloads, &c.Paths.Patches, &c.Paths.Fragments, &c.Paths.Recipes, &c.Paths.Labs, &c.Paths.State} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(abs, *p)
		}
	}
	for i := range c.Test.Scripts {
		if !filepath.IsAbs(c.Test.Scripts[i]) {
			c.Test.Scripts[i] = filepath.Join(abs, c.Test.Scripts[i])
		}
	}
	for _, p := range []*string{&c.Kernel.Tarball, &c.Kernel.Tree, &c.Rootfs.Kernel, &c.Boot.Hostfs, &c.Boot.COW, &c.Release.Previous} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(abs, *p)
		}
	}
	return c, c.validate()
}

// decodeStrict reads a settings file (see DecodeFile); a missing file keeps the defaults.
func decodeStrict(path string, v any) error {
	if err := DecodeFile(path, v, "docs/settings.md"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// DecodeFile reads the TOML file at path into v and refuses keys v has no field for, so that a
// misspelt setting is an error rather than silently ignored; the error names the keys and help, the
// document that lists them. A missing file is an error wrapping fs.ErrNotExist.
func DecodeFile(path string, v any, help string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return Decode(data, path, v, help)
}

// Decode reads TOML text as DecodeFile reads a file; name is the file's name, for messages.
func Decode(data []byte, name string, v any, help string) error {
	md, err := toml.Decode(string(data), v)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%s: unknown key(s) %s: see %s for the keys", name, strings.Join(keys, ", "), help)
	}
	return nil
}

// TOMLNames names the TOML files in dir, such as the labs or the recipes: each file's name without
// ".toml", sorted; none when dir cannot be read.
func TOMLNames(dir string) []string {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.toml")) // its only error is a bad pattern
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = strings.TrimSuffix(filepath.Base(m), ".toml")
	}
	return names // Glob sorts
}

// applyEnv sets each key whose environment variable is set. An older name gets a note.
func (c *Config) applyEnv(getenv func(string) string) error {
	pinned := c.Pin.Version
	for _, s := range Settings {
		name, v, ok := lookupSetting(getenv, s)
		if !ok {
			continue
		}
		if name != s.Env {
			c.Notes = append(c.Notes, fmt.Sprintf("%s is an old name: set %s (%s) instead; the old one goes in the next release", name, s.Env, s.Name()))
		}
		if err := s.set(c, name, v); err != nil {
			return err
		}
	}
	if c.Pin.Version != pinned {
		// A different version invalidates the pinned digest unless one is given with it.
		c.Pin.Released = ""
		if _, ok := lookup(getenv, "SUML_KERNEL_SHA256"); !ok {
			c.Pin.SHA256 = ""
		}
	}
	return nil
}

func defaultCache(getenv func(string) string) string {
	if x := getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "simple-uml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "simple-uml")
	}
	return filepath.Join(os.TempDir(), "simple-uml-cache")
}

// defaultState is where instances keep what must outlive the cache: their COW files and logs.
func defaultState(getenv func(string) string) string {
	if x := getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "simple-uml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "simple-uml")
	}
	return filepath.Join(os.TempDir(), "simple-uml-state")
}

// Jobs is the make -j value to use.
func (c Config) Jobs() int {
	if c.Kernel.Jobs > 0 {
		return c.Kernel.Jobs
	}
	return runtime.NumCPU()
}

func (c Config) validate() error {
	if c.Kernel.Tarball != "" && c.Kernel.Tree != "" {
		return errors.New("kernel.tarball and kernel.tree both name a source to build: keep one")
	}
	if err := checkPins(c.DefaultSeries, c.OtherPins); err != nil {
		return err
	}
	if c.Kernel.Tarball == "" && c.Kernel.Tree == "" && c.Pin.Version == "" {
		return fmt.Errorf("%s has no version: run `go tool mage bump`, or set SUML_KERNEL_TARBALL to a local source tarball", LockName)
	}
	if s := c.Pin.SHA256; s != "" {
		if err := ident.SHA256(strings.ToLower(s)); err != nil {
			return fmt.Errorf("%s: %w", LockName, err)
		}
	}
	for _, s := range Settings {
		if err := s.check(&c); err != nil {
			return err
		}
	}
	if s := c.Boot.Sandbox; s != "auto" && s != "strict" && s != "off" {
		return fmt.Errorf("boot.sandbox = %q: want \"auto\" (Landlock where the host has it), \"strict\" or \"off\"", s)
	}
	if _, err := ident.Memory("boot.mem (SUML_BOOT_MEM)", c.Boot.Mem); err != nil {
		return err
	}
	if err := checkNet(c.Boot.Net); err != nil {
		return err
	}
	if err := checkCCacheRemote(c.Kernel.CCacheRemote, c.Kernel.CCWrapper); err != nil {
		return err
	}
	if _, ok := KernelProfiles[c.Kernel.Profile]; !ok {
		return fmt.Errorf("kernel.profile = %.40q: want \"defconfig\" (ARCH=um defconfig, the release kernel) or \"lean\" (tinyconfig plus what simple-uml uses, a faster build)", c.Kernel.Profile)
	}
	if c.Kernel.Subarch != "x86_64" && c.Kernel.Subarch != "i386" {
		return fmt.Errorf("kernel.subarch %q: User-Mode Linux here supports x86_64 (and i386)", c.Kernel.Subarch)
	}
	if c.Kernel.Tarball == "" && c.Kernel.Tree == "" {
		if c.Kernel.Mirror == "" {
			return errors.New("kernel.mirror is empty: set it to https://cdn.kernel.org/pub/linux/kernel or a mirror")
		}
		if len(c.Kernel.Keys) == 0 {
			return errors.New("kernel.keys is empty: name a file or URL holding the trusted kernel.org keys")
		}
	}
	return nil
}

// KernelProfile is where a kernel configuration starts (kernel.profile): a make target, and a
// fragment of the profile's own (in the kconfig/ folder) applied on top of it, beneath kconfig/'s
// fragments so that those win.
type KernelProfile struct {
	Target   string
	Fragment string // relative to kconfig/; empty for none
}

// KernelProfiles are the profiles kernel.profile names.
var KernelProfiles = map[string]KernelProfile{
	"defconfig": {Target: "defconfig"},
	// What UML's defconfig builds and a test guest does without (debug information, reiserfs,
	// io_uring, input devices, SysV IPC, swap...) is left out: kconfig/profiles/lean.config says
	// what, docs/benchmarks.md what it saves.
	"lean": {Target: "tinyconfig", Fragment: "profiles/lean.config"},
}

// RawNetPrefix starts a boot.net that is a UML eth0 transport of its own ("uml:tuntap,,,tap0"): a
// word of its own, so that a typo of "user" or "none" is an error, not a transport.
const RawNetPrefix = "uml:"

// umlTransports are UML's eth0 transports (arch/um/drivers, arch/um/os-Linux/drivers).
var umlTransports = []string{"tuntap", "ethertap", "daemon", "mcast", "pcap", "vde", "slirp"}

// checkNet accepts boot.net's closed set: none, user, or uml: and one of UML's transports with its
// options, which may hold no white space (each would start a kernel parameter of its own).
func checkNet(n string) error {
	const want = `want "none", "user" (the network built in) or "uml:" and a UML eth0 transport (e.g. "uml:tuntap,,,tap0")`
	switch {
	case n == "none" || n == "user":
		return nil
	case n == "slirp" || n == "auto":
		return fmt.Errorf("boot.net = %q: slirp gave way to the network built in: set boot.net = \"user\" (and boot.host_access = true if the guest must reach the host's loopback services, as it did with slirp)", n)
	case slices.Contains(umlTransports, strings.Split(n, ",")[0]):
		return fmt.Errorf("boot.net = %.60q: a UML transport is spelled %.64q now, so that a typo cannot select one", n, RawNetPrefix+n)
	case !strings.HasPrefix(n, RawNetPrefix):
		return fmt.Errorf("boot.net = %.60q: %s", n, want)
	}
	spec := strings.TrimPrefix(n, RawNetPrefix)
	if !slices.Contains(umlTransports, strings.Split(spec, ",")[0]) {
		return fmt.Errorf("boot.net = %.60q: %q is not a UML transport (%s)", n, strings.Split(spec, ",")[0], strings.Join(umlTransports, ", "))
	}
	if strings.ContainsFunc(spec, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) {
		return fmt.Errorf("boot.net = %.60q: a transport holds no white space, control or non-ASCII characters (each space would start a kernel parameter)", n)
	}
	return nil
}

// checkCCacheRemote accepts ccache's remote storage (a redis:// or http:// URL, with ccache's
// |attributes) without secrets in it: the URL is printed with the make command line and kept in no
// record, but a password belongs in ccache's own configuration file, which ccache reads as well.
func checkCCacheRemote(remote, wrapper string) error {
	if remote == "" {
		return nil
	}
	if wrapper != "ccache" {
		return fmt.Errorf("kernel.ccache_remote is ccache's remote storage: set kernel.cc_wrapper = \"ccache\" too")
	}
	for _, storage := range strings.Fields(remote) {
		u, attrs, _ := strings.Cut(storage, "|")
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "redis" && parsed.Scheme != "redis+unix" && parsed.Scheme != "http" && parsed.Scheme != "file") {
			return fmt.Errorf("kernel.ccache_remote %q: want ccache's remote storage URL, e.g. redis://cache.example:6379 or http://cache.example/ccache", storage)
		}
		if parsed.User != nil || strings.Contains(attrs, "token") {
			return fmt.Errorf("kernel.ccache_remote %q holds a secret, which would be printed with the build's commands: put the remote storage with its password in ccache's own configuration (remote_storage in ccache.conf) and leave kernel.ccache_remote empty", storage)
		}
	}
	return nil
}
