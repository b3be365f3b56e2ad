// Package kernel is the kernel stage: where a kernel's source comes from (a release kernel.lock pins,
// a local tarball, or a tree of the user's), what its build depends on, and the configured, built and
// installed kernel in dist/, or one installed from a published release with the image it boots.
// build/kbuild runs make; this package decides what to run it on.
package kernel

import (
	"os"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// Names of the kernel's outputs in dist/.
const (
	LinuxName     = "linux"
	ConfigName    = "linux.config"
	SystemMapName = "System.map"
	// LicenseName is the kernel's licence (COPYING and the licence texts it points to), for the
	// release tarball.
	LicenseName = "linux.COPYING"
	// DebugName is the unstripped kernel for gdb (`mage debug`): kept in dist/, not an output of the
	// record, not a release asset.
	DebugName = "linux-debug"
)

// Output is one file the kernel stage leaves in dist/ and records by digest.
type Output struct {
	Name      string      // in dist/
	InRelease string      // its name in a release's kernel tarball
	Mode      os.FileMode // in dist/ and in the tarball
	// From is the file in the build's output folder (O=) it is copied from; the executable is
	// stripped on the way, and the licence is gathered from the source tree.
	From string
}

// Outputs is dist/'s layout for a kernel: what install writes, the record lists, releases carry and
// fetch puts back. Format changes whenever it or what its files hold changes.
var Outputs = []Output{
	{Name: LinuxName, InRelease: "linux", Mode: 0o755, From: "linux"},
	{Name: ConfigName, InRelease: ".config", Mode: 0o644, From: ".config"},
	{Name: SystemMapName, InRelease: "System.map", Mode: 0o644, From: "System.map"},
	{Name: LicenseName, InRelease: "COPYING", Mode: 0o644},
}

// InRelease maps each output's name in a release's kernel tarball to its name in dist/.
func InRelease() map[string]string {
	names := map[string]string{}
	for _, o := range Outputs {
		names[o.InRelease] = o.Name
	}
	return names
}

// Format is the version of what the kernel stage leaves in dist/. It is part of every input key, with
// the outputs' names, so that a dist/ made before a change of layout is never up to date.
const Format = 2

// InputKey hashes every input of a build, and the layout of what it leaves, so that any change
// (tarball, patch, fragment, compiler, settings, a new output) makes a different key. The version is
// implied by the tarball's digest, and the build timestamp is read from the tarball, so neither needs
// to be known before unpacking.
func InputKey(r manifest.KernelRecord) string {
	return digest.JSON(struct {
		Format             int
		Outputs            []Output
		Tarball            string
		Patches, Fragments []manifest.Digest
		Subarch, Compiler  string
		CCWrapper, Make    string
		Env                []string
	}{Format, Outputs, r.TarballSHA256, r.Patches, r.Fragments, r.Subarch, r.Compiler, r.CCWrapper, r.MakeTargets, r.BuildEnv})
}
