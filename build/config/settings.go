package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Setting is one key of simple-uml.toml or kernel.lock, declared once: its name in the file, its
// environment variable (and older names still read), its default, and what it means as docs/settings.md's
// tables say it. TestSettingsDocumented holds docs/settings.md and simple-uml.toml to this list.
type Setting struct {
	File    string   // FileName or LockName
	Key     string   // "kernel.series"; kernel.lock's keys have no table: "version"
	Env     string   // SUML_<TABLE>_<KEY>; [paths] keys are SUML_<KEY>, kernel.lock's SUML_KERNEL_<KEY>
	Aliases []string // older environment names, still read for one release, with a note
	Default any      // string, int, bool or []string; what simple-uml.toml says
	Shown   string   // the default as docs/settings.md shows it
	Min     int      // the least value of a whole number
	Doc     string   // what it means: docs/settings.md's meaning column
	field   func(*Config) any
}

// Settings are every key with an environment override.
var Settings = []Setting{
	{FileName, "kernel.series", "SUML_KERNEL_SERIES", nil, "6.12", "`6.12`", 0,
		"the series tracked: a longterm branch, `stable` or `mainline`", func(c *Config) any { return &c.Kernel.Series }},
	{FileName, "kernel.mirror", "SUML_KERNEL_MIRROR", nil, "https://cdn.kernel.org/pub/linux/kernel", "`https://cdn.kernel.org/pub/linux/kernel`", 0,
		"kernel.org's `pub/linux/kernel` tree or a mirror of it", func(c *Config) any { return &c.Kernel.Mirror }},
	{FileName, "kernel.releases_url", "SUML_KERNEL_RELEASES_URL", nil, "https://www.kernel.org/releases.json", "`https://www.kernel.org/releases.json`", 0,
		"kernel.org's release list", func(c *Config) any { return &c.Kernel.ReleasesURL }},
	{FileName, "kernel.tarball", "SUML_KERNEL_TARBALL", nil, "", "empty", 0,
		"a local source tarball to build instead (version read from its Makefile)", func(c *Config) any { return &c.Kernel.Tarball }},
	{FileName, "kernel.tree", "SUML_KERNEL_TREE", nil, "", "empty", 0,
		"a kernel source tree or git worktree to build instead, out of tree and incrementally, never written to (`patches/` not applied)", func(c *Config) any { return &c.Kernel.Tree }},
	{FileName, "kernel.kunitconfig", "SUML_KERNEL_KUNITCONFIG", nil, []string{}, "none", 0,
		"`.kunitconfig` files, or folders holding one, whose options are built in too, as kunit.py's `--kunitconfig` (relative to `kernel.tree` when set; comma-separated in the environment)", func(c *Config) any { return &c.Kernel.KunitConfig }},
	{FileName, "kernel.trusted_keys", "SUML_KERNEL_TRUSTED_KEYS", nil, []string{"B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1"},
		"kernel.org's checksum autosigner `B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1`", 0,
		"full fingerprints of keys allowed to sign `sha256sums.asc` (comma-separated in the environment)", func(c *Config) any { return &c.Kernel.TrustedKeys }},
	{FileName, "kernel.keys", "SUML_KERNEL_KEYS", nil, []string{"https://git.kernel.org/pub/scm/docs/kernel/pgpkeys.git/plain/keys/632D3A06589DA6B1.asc"},
		"the autosigner key in kernel.org's pgpkeys.git", 0,
		"URLs or files holding those keys (comma-separated in the environment)", func(c *Config) any { return &c.Kernel.Keys }},
	{FileName, "kernel.subarch", "SUML_KERNEL_SUBARCH", nil, "x86_64", "`x86_64`", 0,
		"SUBARCH of the UML build", func(c *Config) any { return &c.Kernel.Subarch }},
	{FileName, "kernel.profile", "SUML_KERNEL_PROFILE", nil, "defconfig", "`defconfig`", 0,
		"where the kernel configuration starts: `defconfig` (`make ARCH=um defconfig`) or `lean` (`tinyconfig` plus `kconfig/profiles/lean.config`: what simple-uml uses, no debug info, a faster build); `kconfig/` fragments go on top", func(c *Config) any { return &c.Kernel.Profile }},
	{FileName, "kernel.jobs", "SUML_KERNEL_JOBS", []string{"SUML_JOBS"}, 0, "`0` (one per core)", 0,
		"`make -j`", func(c *Config) any { return &c.Kernel.Jobs }},
	{FileName, "kernel.cc_wrapper", "SUML_KERNEL_CC_WRAPPER", []string{"SUML_CC_WRAPPER"}, "", "empty", 0,
		"a compiler wrapper: `ccache`, `distcc`, `icecc`, `sccache`", func(c *Config) any { return &c.Kernel.CCWrapper }},
	{FileName, "kernel.ccache_remote", "SUML_KERNEL_CCACHE_REMOTE", nil, "", "empty", 0,
		"with `cc_wrapper = \"ccache\"`: ccache's remote storage, shared between machines, e.g. `redis://cache.example:6379` (no password: that goes in ccache.conf)", func(c *Config) any { return &c.Kernel.CCacheRemote }},
	{FileName, "paths.dist", "SUML_DIST", nil, "dist", "`dist`", 0,
		"outputs", func(c *Config) any { return &c.Paths.Dist }},
	{FileName, "paths.cache", "SUML_CACHE", nil, "", "`$XDG_CACHE_HOME/simple-uml` (`~/.cache/simple-uml`)", 0,
		"unpacked trees, build directories, work folders", func(c *Config) any { return &c.Paths.Cache }},
	{FileName, "paths.state", "SUML_STATE", nil, "", "`$XDG_STATE_HOME/simple-uml` (`~/.local/state/simple-uml`)", 0,
		"instances (`mage up`): their COW files, console logs and state, which `cache -clean` leaves", func(c *Config) any { return &c.Paths.State }},
	{FileName, "paths.downloads", "SUML_DOWNLOADS", nil, "", "`<cache>/downloads`", 0,
		"verified downloads by sha256 (tarballs, signatures, keys, xbps packages); safe to share", func(c *Config) any { return &c.Paths.Downloads }},
	{FileName, "paths.patches", "SUML_PATCHES", nil, "patches", "`patches`", 0,
		"the patch series", func(c *Config) any { return &c.Paths.Patches }},
	{FileName, "paths.kconfig", "SUML_KCONFIG", nil, "kconfig", "`kconfig`", 0,
		"the config fragments", func(c *Config) any { return &c.Paths.Fragments }},
	{FileName, "paths.recipes", "SUML_RECIPES", nil, "rootfs-recipes", "`rootfs-recipes`", 0,
		"root filesystem recipes", func(c *Config) any { return &c.Paths.Recipes }},
	{FileName, "paths.labs", "SUML_LABS", nil, "labs", "`labs`", 0,
		"lab files: networks of guests for `mage lab`", func(c *Config) any { return &c.Paths.Labs }},
	{FileName, "rootfs.recipe", "SUML_ROOTFS_RECIPE", nil, "void-minimal", "`void-minimal`", 0,
		"the recipe `mage rootfs` builds", func(c *Config) any { return &c.Rootfs.Recipe }},
	{FileName, "rootfs.kernel", "SUML_ROOTFS_KERNEL", nil, "", "empty (`dist/linux`, built when needed)", 0,
		"the kernel of the configure boot", func(c *Config) any { return &c.Rootfs.Kernel }},
	{FileName, "rootfs.downloads", "SUML_ROOTFS_DOWNLOADS", nil, 4, "`4`", 1,
		"parallel package downloads", func(c *Config) any { return &c.Rootfs.Downloads }},
	{FileName, "test.scripts", "SUML_TEST_SCRIPTS", nil, []string{}, "none", 0,
		"your checks, run as root in the guest by `mage test` after its own, each a shell script printing KTAP or TAP (or passing by its exit status); comma-separated in the environment", func(c *Config) any { return &c.Test.Scripts }},
	{FileName, "release.revision", "SUML_RELEASE_REVISION", nil, 1, "`1`", 1,
		"the packaging revision of the pinned kernel: releases are tagged `v<version>-<revision>`", func(c *Config) any { return &c.Release.Revision }},
	{FileName, "release.previous", "SUML_RELEASE_PREVIOUS", []string{"SUML_PREVIOUS_MANIFEST"}, "", "empty (the release dist/release held, when its tag differs)", 0,
		"the previous release's `manifest.json`, which the release notes compare with", func(c *Config) any { return &c.Release.Previous }},
	{FileName, "release.registry", "SUML_RELEASE_REGISTRY", nil, "ghcr.io", "`ghcr.io`", 0,
		"the container registry `mage push` sends `mage image`'s image to, as <registry>/<GITHUB_REPOSITORY>/<recipe>:<release tag>", func(c *Config) any { return &c.Release.Registry }},
	{FileName, "boot.recipe", "SUML_BOOT_RECIPE", nil, "", "the rootfs recipe", 0,
		"whose image to boot", func(c *Config) any { return &c.Boot.Recipe }},
	{FileName, "boot.mem", "SUML_BOOT_MEM", nil, "256M", "`256M`", 0,
		"guest memory: a whole number and K, M or G, from 32M to 64G", func(c *Config) any { return &c.Boot.Mem }},
	{FileName, "boot.args", "SUML_BOOT_ARGS", nil, "", "empty", 0,
		"extra kernel arguments, e.g. `init=/bin/sh`", func(c *Config) any { return &c.Boot.Args }},
	{FileName, "boot.hostfs", "SUML_BOOT_HOSTFS", nil, "", "empty", 0,
		"a host folder the guest mounts with `mount -t hostfs none /mnt`, and nothing outside it; empty: no host file is reachable (the kernel's hostfs is patched, see below)", func(c *Config) any { return &c.Boot.Hostfs }},
	// No network by default: a guest reaches nothing unless the user opens a door (boot.net, and
	// boot.host_access for the host's loopback).
	{FileName, "boot.net", "SUML_BOOT_NET", nil, "none", "`none`", 0,
		"`user` (a network without privileges or helper programs; the host itself stays closed unless `SUML_BOOT_HOST_ACCESS` opens it), `none`, or `uml:` and a UML eth0 transport for hosts where you may use tap devices: `uml:tuntap,,,tap0`", func(c *Config) any { return &c.Boot.Net }},
	{FileName, "boot.host_access", "SUML_BOOT_HOST_ACCESS", nil, false, "`false`", 0,
		"with `user`: the guest reaches the host's loopback services as 10.0.2.2, and services on the host's own addresses", func(c *Config) any { return &c.Boot.HostAccess }},
	{FileName, "boot.sandbox", "SUML_BOOT_SANDBOX", nil, "auto", "`auto`", 0,
		"the kernel process on the host: `auto` confines it with Landlock where the host's kernel has it (it reads its kernel, image and the system's libraries, writes its COW file, its run folder and the shared folder, opens no TCP connection, signals none of your other processes) and always with a system-call filter (no inet sockets, io_uring, modules, namespaces, mounts, or changes to your files' modes and your processes) and without root's capabilities but over files; `strict` refuses to boot without Landlock ABI 6 (Linux 6.12), `off` runs it with all of your rights (`mage debug` always does: gdb needs the host)", func(c *Config) any { return &c.Boot.Sandbox }},
	{FileName, "boot.forward", "SUML_BOOT_FORWARD", nil, "", "empty", 0,
		"guest TCP ports on the host's 127.0.0.1: `2222:22,8080:80` (`user`)", func(c *Config) any { return &c.Boot.Forward }},
	{FileName, "boot.cow", "SUML_BOOT_COW", nil, "", "empty", 0,
		"keep the guest's writes in this file between boots; a boot of a file another running boot uses is refused, naming that boot's pid", func(c *Config) any { return &c.Boot.COW }},
	{FileName, "boot.ready", "SUML_BOOT_READY", nil, "login:", "`login:`", 0,
		"console text that means \"up\" for `mage test`", func(c *Config) any { return &c.Boot.Ready }},
	{FileName, "boot.timeout", "SUML_BOOT_TIMEOUT", nil, 60, "`60`", 1,
		"seconds `mage test` waits for each step", func(c *Config) any { return &c.Boot.Timeout }},
	{LockName, "version", "SUML_KERNEL_VERSION", nil, "", "the pinned version", 0,
		"the kernel built", func(c *Config) any { return &c.Pin.Version }},
	{LockName, "sha256", "SUML_KERNEL_SHA256", nil, "", "empty", 0,
		"the tarball's pinned sha256; empty means \"take it from the signed sha256sums.asc\"", func(c *Config) any { return &c.Pin.SHA256 }},
}

// setDefault puts the setting's default into c.
func (s Setting) setDefault(c *Config) {
	switch p := s.field(c).(type) {
	case *string:
		*p = s.Default.(string)
	case *int:
		*p = s.Default.(int)
	case *bool:
		*p = s.Default.(bool)
	case *[]string:
		*p = append([]string(nil), s.Default.([]string)...)
	}
}

// set parses v, the value of the environment variable name, into c.
func (s Setting) set(c *Config, name, v string) error {
	switch p := s.field(c).(type) {
	case *string:
		*p = v
	case *[]string:
		*p = splitList(v)
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil || n < s.Min {
			return fmt.Errorf("%s=%q: want a whole number, %d or more", name, v, s.Min)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%s=%q: want true or false", name, v)
		}
		*p = b
	}
	return nil
}

// check refuses a whole number below the setting's least value, as the file gave it.
func (s Setting) check(c *Config) error {
	if p, ok := s.field(c).(*int); ok && *p < s.Min {
		return fmt.Errorf("%s = %d: want %d or more", s.Name(), *p, s.Min)
	}
	return nil
}

// Name is the key as a person looks for it: "kernel.series", "kernel.lock version".
func (s Setting) Name() string {
	if s.File == LockName {
		return LockName + " " + s.Key
	}
	return s.Key
}

// lookupSetting reads the setting's environment variable, or else the first of its older names
// that is set, and says which it read.
func lookupSetting(getenv func(string) string, s Setting) (name, value string, ok bool) {
	for _, n := range append([]string{s.Env}, s.Aliases...) {
		if v, ok := lookup(getenv, n); ok {
			return n, v, true
		}
	}
	return "", "", false
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
