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
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/simple-uml/simple-uml/build/ident"
)

// FileName and LockName are the configuration and lock files at the repository root.
const (
	FileName = "simple-uml.toml"
	LockName = "kernel.lock"
)

// Kernel is the [kernel] table.
type Kernel struct {
	Series      string   `toml:"series"`       // branch ("6.12"), "stable" or "mainline"; what `mage bump` tracks
	Mirror      string   `toml:"mirror"`       // base URL of kernel.org's pub/linux/kernel tree
	ReleasesURL string   `toml:"releases_url"` // kernel.org's releases.json
	Tarball     string   `toml:"tarball"`      // local source tarball used instead of a download; empty: download
	TrustedKeys []string `toml:"trusted_keys"` // full OpenPGP fingerprints allowed to sign sha256sums.asc
	Keys        []string `toml:"keys"`         // URLs or files holding those keys; others in them are ignored
	Subarch     string   `toml:"subarch"`      // SUBARCH for ARCH=um; only x86_64 is tested
	Jobs        int      `toml:"jobs"`         // make -j; 0 means one per core
	CCWrapper   string   `toml:"cc_wrapper"`   // e.g. "ccache"; prepended to the compiler; empty: none
}

// Rootfs is the [rootfs] table.
type Rootfs struct {
	Recipe    string `toml:"recipe"`    // default recipe name (a file in paths.recipes without .toml)
	Kernel    string `toml:"kernel"`    // kernel for the configure boot; empty: the one `mage kernel` builds
	Downloads int    `toml:"downloads"` // parallel package downloads
}

// Boot is the [boot] table: how `mage boot` and `mage test` run the guest.
type Boot struct {
	Recipe     string `toml:"recipe"`      // whose image to boot; empty: rootfs.recipe
	Mem        string `toml:"mem"`         // guest memory
	Args       string `toml:"args"`        // extra kernel arguments, space-separated
	Hostfs     string `toml:"hostfs"`      // host folder the guest can mount with -t hostfs; empty: none
	Net        string `toml:"net"`         // "none", "user" (the network built in), or a UML eth0 spec such as "tuntap,,,tap0"
	HostAccess bool   `toml:"host_access"` // the user network's guest reaches the host's loopback services as 10.0.2.2
	Forward    string `toml:"forward"`     // host 127.0.0.1 ports to guest ports: "2222:22,8080:80"
	COW        string `toml:"cow"`         // copy-on-write file to keep the guest's writes in; empty: a throwaway one
	Ready      string `toml:"ready"`       // console text that means the guest is up (mage test)
	Timeout    int    `toml:"timeout"`     // seconds mage test waits for each step
	Sandbox    string `toml:"sandbox"`     // the kernel process on the host: "auto" (Landlock where the host has it), "strict" (refuse without), "off"
}

// Release is the [release] table.
type Release struct {
	Revision int    `toml:"revision"` // packaging revision of a kernel version: tag v<version>-<revision>
	Previous string `toml:"previous"` // the previous release's manifest.json, for the release notes
}

// Paths is the [paths] table. Relative paths are relative to the repository root.
type Paths struct {
	Dist      string `toml:"dist"`      // finished outputs
	Cache     string `toml:"cache"`     // build trees and work folders; empty means $XDG_CACHE_HOME/simple-uml
	Downloads string `toml:"downloads"` // verified downloads by sha256; empty means <cache>/downloads
	Patches   string `toml:"patches"`   // patch series directory
	Fragments string `toml:"kconfig"`   // kernel config fragments directory
	Recipes   string `toml:"recipes"`   // root filesystem recipes directory
}

// KernelPin is kernel.lock: the kernel `mage kernel` builds. `mage bump` rewrites it.
type KernelPin struct {
	Version  string `toml:"version"`  // e.g. 6.12.117
	SHA256   string `toml:"sha256"`   // of linux-<version>.tar.xz; empty: taken from the signed sha256sums.asc
	Released string `toml:"released"` // release date (YYYY-MM-DD), informational
}

// Config is everything the pipeline needs, with paths made absolute.
type Config struct {
	Root    string // repository root
	Kernel  Kernel
	Rootfs  Rootfs
	Boot    Boot
	Release Release
	Paths   Paths
	Pin     KernelPin
}

// Defaults are used for keys the file leaves out.
func Defaults() Config {
	return Config{
		Kernel: Kernel{
			Series:      "6.12",
			Mirror:      "https://cdn.kernel.org/pub/linux/kernel",
			ReleasesURL: "https://www.kernel.org/releases.json",
			TrustedKeys: []string{"B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1"},
			Keys:        []string{"https://git.kernel.org/pub/scm/docs/kernel/pgpkeys.git/plain/keys/632D3A06589DA6B1.asc"},
			Subarch:     "x86_64",
		},
		Rootfs: Rootfs{Recipe: "void-minimal", Downloads: 4},
		// No network by default: a guest reaches nothing unless the user opens a door (boot.net, and
		// boot.host_access for the host's loopback).
		Boot:    Boot{Mem: "256M", Net: "none", Ready: "login:", Timeout: 60, Sandbox: "auto"},
		Release: Release{Revision: 1},
		Paths:   Paths{Dist: "dist", Patches: "patches", Fragments: "kconfig", Recipes: "rootfs-recipes"},
	}
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
	if err := decodeStrict(filepath.Join(abs, LockName), &c.Pin); err != nil {
		return Config{}, err
	}
	if err := c.applyEnv(getenv); err != nil {
		return Config{}, err
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
	for _, p := range []*string{&c.Paths.Dist, &c.Paths.Cache, &c.Paths.Downloads, &c.Paths.Patches, &c.Paths.Fragments, &c.Paths.Recipes} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(abs, *p)
		}
	}
	for _, p := range []*string{&c.Kernel.Tarball, &c.Rootfs.Kernel, &c.Boot.Hostfs, &c.Boot.COW, &c.Release.Previous} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(abs, *p)
		}
	}
	return c, c.validate()
}

// decodeStrict reads a settings file (see DecodeFile); a missing file keeps the defaults.
func decodeStrict(path string, v any) error {
	if err := DecodeFile(path, v, "README.md"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// DecodeFile reads the TOML file at path into v and refuses keys v has no field for, so that a
// misspelt setting is an error rather than silently ignored; the error names the keys and help, the
// document that lists them. A missing file is an error wrapping fs.ErrNotExist.
func DecodeFile(path string, v any, help string) error {
	md, err := toml.DecodeFile(path, v)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%s: unknown key(s) %s: see %s for the keys", path, strings.Join(keys, ", "), help)
	}
	return nil
}

func (c *Config) applyEnv(getenv func(string) string) error {
	str := map[string]*string{
		"SUML_KERNEL_SERIES":       &c.Kernel.Series,
		"SUML_KERNEL_MIRROR":       &c.Kernel.Mirror,
		"SUML_KERNEL_RELEASES_URL": &c.Kernel.ReleasesURL,
		"SUML_KERNEL_TARBALL":      &c.Kernel.Tarball,
		"SUML_KERNEL_SUBARCH":      &c.Kernel.Subarch,
		"SUML_CC_WRAPPER":          &c.Kernel.CCWrapper,
		"SUML_DIST":                &c.Paths.Dist,
		"SUML_CACHE":               &c.Paths.Cache,
		"SUML_DOWNLOADS":           &c.Paths.Downloads,
		"SUML_PATCHES":             &c.Paths.Patches,
		"SUML_KCONFIG":             &c.Paths.Fragments,
		"SUML_KERNEL_SHA256":       &c.Pin.SHA256,
		"SUML_RECIPES":             &c.Paths.Recipes,
		"SUML_ROOTFS_RECIPE":       &c.Rootfs.Recipe,
		"SUML_ROOTFS_KERNEL":       &c.Rootfs.Kernel,
		"SUML_PREVIOUS_MANIFEST":   &c.Release.Previous,
		"SUML_BOOT_RECIPE":         &c.Boot.Recipe,
		"SUML_BOOT_MEM":            &c.Boot.Mem,
		"SUML_BOOT_ARGS":           &c.Boot.Args,
		"SUML_BOOT_HOSTFS":         &c.Boot.Hostfs,
		"SUML_BOOT_NET":            &c.Boot.Net,
		"SUML_BOOT_SANDBOX":        &c.Boot.Sandbox,
		"SUML_BOOT_FORWARD":        &c.Boot.Forward,
		"SUML_BOOT_COW":            &c.Boot.COW,
		"SUML_BOOT_READY":          &c.Boot.Ready,
	}
	for name, dst := range str {
		if v, ok := lookup(getenv, name); ok {
			*dst = v
		}
	}
	lists := map[string]*[]string{"SUML_KERNEL_TRUSTED_KEYS": &c.Kernel.TrustedKeys, "SUML_KERNEL_KEYS": &c.Kernel.Keys}
	for name, dst := range lists {
		if v, ok := lookup(getenv, name); ok {
			*dst = splitList(v)
		}
	}
	if v, ok := lookup(getenv, "SUML_KERNEL_VERSION"); ok && v != c.Pin.Version {
		// A different version invalidates the pinned digest unless one is given with it.
		c.Pin.Version = v
		c.Pin.Released = ""
		if _, ok := lookup(getenv, "SUML_KERNEL_SHA256"); !ok {
			c.Pin.SHA256 = ""
		}
	}
	if v, ok := lookup(getenv, "SUML_JOBS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("SUML_JOBS=%q: want a whole number (0 means one job per core)", v)
		}
		c.Kernel.Jobs = n
	}
	if v, ok := lookup(getenv, "SUML_RELEASE_REVISION"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("SUML_RELEASE_REVISION=%q: want a whole number, 1 or more", v)
		}
		c.Release.Revision = n
	}
	if v, ok := lookup(getenv, "SUML_BOOT_TIMEOUT"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("SUML_BOOT_TIMEOUT=%q: want whole seconds, 1 or more", v)
		}
		c.Boot.Timeout = n
	}
	if v, ok := lookup(getenv, "SUML_BOOT_HOST_ACCESS"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SUML_BOOT_HOST_ACCESS=%q: want true or false", v)
		}
		c.Boot.HostAccess = b
	}
	if v, ok := lookup(getenv, "SUML_ROOTFS_DOWNLOADS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("SUML_ROOTFS_DOWNLOADS=%q: want a whole number, 1 or more", v)
		}
		c.Rootfs.Downloads = n
	}
	return nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return strings.TrimSpace(v), v != ""
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
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

// Jobs is the make -j value to use.
func (c Config) Jobs() int {
	if c.Kernel.Jobs > 0 {
		return c.Kernel.Jobs
	}
	return runtime.NumCPU()
}

func (c Config) validate() error {
	if c.Kernel.Tarball == "" && c.Pin.Version == "" {
		return fmt.Errorf("%s has no version: run `go tool mage bump`, or set SUML_KERNEL_TARBALL to a local source tarball", LockName)
	}
	if s := c.Pin.SHA256; s != "" {
		if err := ident.SHA256(strings.ToLower(s)); err != nil {
			return fmt.Errorf("%s: %w", LockName, err)
		}
	}
	if c.Release.Revision < 1 {
		return fmt.Errorf("release.revision = %d: want 1 or more", c.Release.Revision)
	}
	if c.Boot.Timeout < 1 {
		return fmt.Errorf("boot.timeout = %d: want whole seconds, 1 or more", c.Boot.Timeout)
	}
	if s := c.Boot.Sandbox; s != "auto" && s != "strict" && s != "off" {
		return fmt.Errorf("boot.sandbox = %q: want \"auto\" (Landlock where the host has it), \"strict\" or \"off\"", s)
	}
	if n := c.Boot.Net; n == "slirp" || n == "auto" {
		return fmt.Errorf("boot.net = %q: slirp gave way to the network built in: set boot.net = \"user\" (and boot.host_access = true if the guest must reach the host's loopback services, as it did with slirp)", n)
	}
	if c.Rootfs.Downloads < 1 {
		return fmt.Errorf("rootfs.downloads = %d: want 1 or more parallel downloads", c.Rootfs.Downloads)
	}
	if c.Kernel.Subarch != "x86_64" && c.Kernel.Subarch != "i386" {
		return fmt.Errorf("kernel.subarch %q: User-Mode Linux here supports x86_64 (and i386)", c.Kernel.Subarch)
	}
	if c.Kernel.Tarball == "" {
		if c.Kernel.Mirror == "" {
			return errors.New("kernel.mirror is empty: set it to https://cdn.kernel.org/pub/linux/kernel or a mirror")
		}
		if len(c.Kernel.Keys) == 0 {
			return errors.New("kernel.keys is empty: name a file or URL holding the trusted kernel.org keys")
		}
	}
	return nil
}
