package kernel

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/manifest"
)

func repoRoot(t testing.TB) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadConfig loads the repository's configuration with env as the whole environment.
func loadConfig(t testing.TB, env map[string]string) config.Config {
	t.Helper()
	work := t.TempDir()
	full := map[string]string{"HOME": work, "SUML_CACHE": filepath.Join(work, "cache"), "SUML_DIST": filepath.Join(work, "dist")}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := config.Load(repoRoot(t), func(k string) string { return full[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writeFiles(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestProfileInputs: the lean profile starts from tinyconfig with its own fragment beneath
// kconfig/'s, which win where both set an option; it has a build folder of its own, and an unknown
// profile is refused naming the setting.
func TestProfileInputs(t *testing.T) {
	lean, err := os.ReadFile(filepath.Join(repoRoot(t), "kconfig", "profiles", "lean.config"))
	if err != nil {
		t.Fatal(err)
	}
	frags := writeFiles(t, t.TempDir(), map[string]string{
		"10-boot.config": "CONFIG_HOSTFS=y\n", "40-ipv6.config": "CONFIG_IPV6=y\n", "profiles/lean.config": string(lean),
	})
	src := Source{Version: "6.12.117", SHA256: strings.Repeat("ab", 32)}
	ctx := context.Background()

	defCfg := loadConfig(t, map[string]string{"SUML_KCONFIG": frags, "SUML_KERNEL_VERSION": "6.12.117"})
	def, err := gatherInputs(ctx, defCfg, src)
	if err != nil {
		t.Fatal(err)
	}
	leanCfg := loadConfig(t, map[string]string{"SUML_KCONFIG": frags, "SUML_KERNEL_VERSION": "6.12.117", "SUML_KERNEL_PROFILE": "lean"})
	leanIn, err := gatherInputs(ctx, leanCfg, src)
	if err != nil {
		t.Fatal(err)
	}
	if def.Base != "defconfig" || leanIn.Base != "tinyconfig" || leanIn.Record.MakeTargets != "tinyconfig olddefconfig linux" {
		t.Errorf("bases %s and %s, lean make targets %q", def.Base, leanIn.Base, leanIn.Record.MakeTargets)
	}
	if def.Record.InputKey == leanIn.Record.InputKey {
		t.Error("the profiles share an input key")
	}
	if d, l := filepath.Base(src.BuildDir(defCfg)), filepath.Base(src.BuildDir(leanCfg)); !strings.HasSuffix(d, "-x86_64") || l != d+"-lean" {
		t.Errorf("build folders %s and %s; want the lean one beside the default's", d, l)
	}
	if got := leanIn.Requested.Options; got["CONFIG_IPV6"] != "y" || got["CONFIG_DEBUG_INFO_NONE"] != "y" || got["CONFIG_HOSTFS"] != "y" {
		t.Errorf("lean requests IPV6=%s DEBUG_INFO_NONE=%s HOSTFS=%s; want the fragment's y, the profile's y, the fragment's y",
			got["CONFIG_IPV6"], got["CONFIG_DEBUG_INFO_NONE"], got["CONFIG_HOSTFS"])
	}
	if def.Requested.Options["CONFIG_DEBUG_INFO_NONE"] != "" {
		t.Error("the default profile requests the lean profile's options")
	}
	var leanListed bool
	for _, f := range leanIn.Record.Fragments {
		leanListed = leanListed || strings.HasSuffix(f.File, "profiles/lean.config")
	}
	if !leanListed {
		t.Errorf("the record's fragments do not name the profile's: %+v", leanIn.Record.Fragments)
	}
	if _, err := config.Load(repoRoot(t), func(k string) string {
		return map[string]string{"SUML_KERNEL_PROFILE": "tiny", "HOME": t.TempDir()}[k]
	}); err == nil || !strings.Contains(err.Error(), "kernel.profile") || !strings.Contains(err.Error(), "lean") {
		t.Errorf("an unknown profile: %v; want the setting and the profiles there are named", err)
	}
}

// TestTreeHasNoInputKey: a tree's files are its input, so it has no key (make decides what to
// rebuild) and no patches are recorded for it; a tarball has both.
func TestTreeHasNoInputKey(t *testing.T) {
	tree := writeFiles(t, t.TempDir(), map[string]string{"Makefile": "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 3\nEXTRAVERSION =\n"})
	cfg := loadConfig(t, map[string]string{"SUML_KERNEL_TREE": tree})
	in, err := Plan(context.Background(), cfg, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if in.Source.Tree == nil || in.Source.Version != "6.12.3" || in.Record.InputKey != "" || len(in.Record.Patches) != 0 {
		t.Errorf("a tree: source %+v, key %q, patches %v", in.Source, in.Record.InputKey, in.Record.Patches)
	}
	if _, err := Plan(context.Background(), loadConfig(t, map[string]string{"SUML_KERNEL_TREE": t.TempDir()}), nil, io.Discard); err == nil || !strings.Contains(err.Error(), "not a kernel source tree") {
		t.Errorf("an empty folder as the tree: %v", err)
	}
}

// fakeBuild is a build folder and source tree as make leaves them, with /bin/true as the executable.
func fakeBuild(t *testing.T) (*Build, string) {
	t.Helper()
	src := writeFiles(t, t.TempDir(), map[string]string{"COPYING": "GPL-2.0 with the syscall note\n", "LICENSES/preferred/GPL-2.0": "the GPL\n"})
	out := writeFiles(t, t.TempDir(), map[string]string{".config": "CONFIG_UML=y\n", "System.map": "0000 T _start\n", "Module.symvers": "\n"})
	linux := filepath.Join(out, "linux")
	exe, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(linux, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Build{Options: kbuild.Options{Src: src, Out: out}, Version: "6.12.3", closer: func() {}}, linux
}

// TestNewOutputIsNotUpToDate: the dist layout's table is in every input key, so a kernel stage with
// one more output finds an old dist/ out of date, and installing writes the new output, with the
// mode the table gives, recorded by digest.
func TestNewOutputIsNotUpToDate(t *testing.T) {
	ctx := context.Background()
	dist := t.TempDir()
	b, linux := fakeBuild(t)
	rec := manifest.KernelRecord{Version: "6.12.3", TarballSHA256: strings.Repeat("cd", 32), Subarch: "x86_64"}
	rec.InputKey = InputKey(rec)
	if err := Install(ctx, dist, &rec, b, linux, io.Discard); err != nil {
		t.Fatal(err)
	}
	recordPath := filepath.Join(dist, manifest.KernelRecordName)
	if _, ok := manifest.ReadCurrent[manifest.KernelRecord](recordPath, rec.InputKey); !ok {
		t.Fatal("the installed kernel is not up to date against its own key")
	}
	for _, o := range Outputs {
		info, err := os.Stat(filepath.Join(dist, o.Name))
		if err != nil || info.Mode().Perm() != o.Mode {
			t.Errorf("output %s: %v, %v; want mode %v", o.Name, info, err, o.Mode)
		}
	}
	if leftover, _ := filepath.Glob(filepath.Join(dist, ".kernel.tmp-*")); len(leftover) > 0 {
		t.Errorf("install left %v", leftover)
	}

	saved := Outputs
	t.Cleanup(func() { Outputs = saved })
	Outputs = append(append([]Output{}, saved...), Output{Name: "Module.symvers", InRelease: "Module.symvers", Mode: 0o644, From: "Module.symvers"})
	next := manifest.KernelRecord{Version: rec.Version, TarballSHA256: rec.TarballSHA256, Subarch: rec.Subarch}
	next.InputKey = InputKey(next)
	if next.InputKey == rec.InputKey {
		t.Fatal("a new output leaves the input key as it was")
	}
	if _, ok := manifest.ReadCurrent[manifest.KernelRecord](recordPath, next.InputKey); ok {
		t.Fatal("dist/ without the new output is up to date")
	}
	if err := Install(ctx, dist, &next, b, linux, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, ok := manifest.ReadCurrent[manifest.KernelRecord](recordPath, next.InputKey); !ok {
		t.Fatal("after install, dist/ is not up to date")
	}
	want, _ := digest.File(filepath.Join(b.Out, "Module.symvers"))
	if got := next.Outputs["Module.symvers"]; got == "" || got != want {
		t.Errorf("the new output is recorded as %q, want %s", got, want)
	}
}

// TestInstallFailureLeavesNoRecord: when an output cannot be made, dist/ has no record (so nothing
// looks complete) and no temporary folder.
func TestInstallFailureLeavesNoRecord(t *testing.T) {
	ctx := context.Background()
	dist := t.TempDir()
	b, linux := fakeBuild(t)
	rec := manifest.KernelRecord{Version: "6.12.3"}
	if err := Install(ctx, dist, &rec, b, linux, io.Discard); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(b.Out, "System.map"))
	err := Install(ctx, dist, &rec, b, linux, io.Discard)
	if err == nil || !strings.Contains(err.Error(), SystemMapName) {
		t.Fatalf("install without System.map: %v; want an error naming it", err)
	}
	if _, err := os.Stat(filepath.Join(dist, manifest.KernelRecordName)); err == nil {
		t.Error("a failed install left a record")
	}
	if leftover, _ := filepath.Glob(filepath.Join(dist, ".kernel.tmp-*")); len(leftover) > 0 {
		t.Errorf("a failed install left %v", leftover)
	}
}

// TestGDBSourceArgs: an installed unstripped kernel tells gdb where its source tree is on this
// machine; a kernel without that note gets no arguments.
func TestGDBSourceArgs(t *testing.T) {
	dist := t.TempDir()
	vmlinux := filepath.Join(dist, DebugName)
	if args := GDBSourceArgs(vmlinux); args != nil {
		t.Errorf("without a .source file: %q", args)
	}
	b, linux := fakeBuild(t)
	if err := Install(context.Background(), dist, &manifest.KernelRecord{Version: "6.12.3"}, b, linux, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := "set substitute-path " + kbuild.SourceRoot + " " + b.Src
	if args := GDBSourceArgs(vmlinux); len(args) != 2 || args[0] != "-ex" || args[1] != want {
		t.Errorf("args %q, want -ex %q", args, want)
	}
}
