package kernel

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/source"
)

// Inputs is everything a build depends on, known before anything is downloaded or unpacked.
type Inputs struct {
	Source    Source
	Series    []source.Patch  // patches/, applied to tarballs; a tree is built as it is
	Base      string          // the make target the configuration starts from (kernel.profile)
	Requested kconf.Requested // the profile's options beneath kconfig/'s fragments
	// Record is the kernel's record before the build: its input key says whether dist/ is up to date
	// (a tree has none: its files are the input, and make decides what to rebuild).
	Record manifest.KernelRecord
}

// Plan resolves the source and gathers the build's inputs.
func Plan(ctx context.Context, cfg config.Config, cache *fetch.Cache, w io.Writer) (Inputs, error) {
	src, err := Resolve(ctx, cfg, cache, w)
	if err != nil {
		return Inputs{}, err
	}
	in, err := gatherInputs(ctx, cfg, src)
	if err != nil {
		return Inputs{}, err
	}
	if src.Tree != nil && len(in.Series) > 0 {
		fmt.Fprintf(w, "kernel.tree: the %d patches of %s are not applied to a tree of yours (apply them there with `git am`)\n", len(in.Series), cfg.Paths.Patches)
	}
	return in, nil
}

func gatherInputs(ctx context.Context, cfg config.Config, src Source) (Inputs, error) {
	series, err := source.ReadSeries(cfg.Paths.Patches)
	if err != nil {
		return Inputs{}, fmt.Errorf("read patch series: %w", err)
	}
	profile, req, frags, err := requestedOptions(cfg)
	if err != nil {
		return Inputs{}, err
	}
	compiler, err := kbuild.CompilerVersion(ctx)
	if err != nil {
		return Inputs{}, fmt.Errorf("find the compiler version: %w", err)
	}
	rec := manifest.KernelRecord{
		Version:       src.Version,
		Source:        src.Display,
		TarballSHA256: src.SHA256,
		Tree:          src.Tree,
		Subarch:       cfg.Kernel.Subarch,
		Compiler:      compiler,
		CCWrapper:     cfg.Kernel.CCWrapper,
		MakeTargets:   profile.Target + " olddefconfig linux",
		Patches:       []manifest.Digest{},
	}
	if src.Tree == nil {
		if rec.Patches, err = patchDigests(cfg, series); err != nil {
			return Inputs{}, err
		}
	}
	var fragFiles []string
	for _, f := range frags {
		fragFiles = append(fragFiles, f.File)
	}
	if rec.Fragments, err = digests(fragFiles, cfg.Root); err != nil {
		return Inputs{}, err
	}
	// The timestamp comes from the tarball (covered by its digest); the rest of the environment is fixed.
	rec.BuildEnv = kbuild.Options{CCWrapper: cfg.Kernel.CCWrapper}.Env()[1:]
	if src.Tree == nil {
		rec.InputKey = InputKey(rec)
	}
	return Inputs{Source: src, Series: series, Base: profile.Target, Requested: req, Record: rec}, nil
}

// patchDigests are the digests of patches/series and the patches it lists, in its order.
func patchDigests(cfg config.Config, series []source.Patch) ([]manifest.Digest, error) {
	var patchFiles []string
	if _, err := os.Stat(filepath.Join(cfg.Paths.Patches, "series")); err == nil {
		patchFiles = append(patchFiles, filepath.Join(cfg.Paths.Patches, "series"))
	}
	for _, p := range series {
		patchFiles = append(patchFiles, p.File)
	}
	return digests(patchFiles, cfg.Root)
}

// digests hashes files in the order given (a patch series' order matters), naming them relative to root.
func digests(files []string, root string) ([]manifest.Digest, error) {
	out := []manifest.Digest{}
	for _, f := range files {
		sum, err := digest.File(f)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(root, f)
		if err != nil {
			rel = f
		}
		out = append(out, manifest.Digest{File: filepath.ToSlash(rel), SHA256: sum})
	}
	return out, nil
}

// requestedOptions are the options the configuration asks for: kconfig/'s fragments (and
// .kunitconfig files) over the profile's own, with the fragments' files.
func requestedOptions(cfg config.Config) (config.KernelProfile, kconf.Requested, []kconf.Fragment, error) {
	profile := config.KernelProfiles[cfg.Kernel.Profile] // config.Load checked the name
	frags, err := kconf.LoadFragments(cfg.Paths.Fragments)
	if err != nil {
		return profile, kconf.Requested{}, nil, fmt.Errorf("read kernel config fragments: %w", err)
	}
	kunitFrags, err := kunitconfigFragments(cfg)
	if err != nil {
		return profile, kconf.Requested{}, nil, err
	}
	frags = append(frags, kunitFrags...)
	req, err := kconf.Merge(frags)
	if err != nil {
		return profile, kconf.Requested{}, nil, fmt.Errorf("kernel config fragments: %w", err)
	}
	if profile.Fragment == "" {
		return profile, req, frags, nil
	}
	file := filepath.Join(cfg.Paths.Fragments, filepath.FromSlash(profile.Fragment))
	opts, err := kconf.ParseFile(file)
	if err != nil {
		return profile, kconf.Requested{}, nil, fmt.Errorf("kernel.profile = %q reads its options from %s, in paths.kconfig (the repository's kconfig/ has it): %w", cfg.Kernel.Profile, profile.Fragment, err)
	}
	base := kconf.Fragment{File: file, Options: opts}
	return profile, req.Beneath(base), append([]kconf.Fragment{base}, frags...), nil
}

// kunitconfigFragments reads kernel.kunitconfig: each a .kunitconfig file or a folder holding one
// (as kunit.py's --kunitconfig takes), relative to kernel.tree when it is set, else to the project.
func kunitconfigFragments(cfg config.Config) ([]kconf.Fragment, error) {
	base := cfg.Root
	if cfg.Kernel.Tree != "" {
		base = cfg.Kernel.Tree
	}
	var frags []kconf.Fragment
	for _, p := range cfg.Kernel.KunitConfig {
		path := p
		if !filepath.IsAbs(path) {
			path = filepath.Join(base, path)
		}
		if info, err := os.Stat(path); err == nil && info.IsDir() {
			path = filepath.Join(path, ".kunitconfig")
		}
		options, err := kconf.ParseFile(path)
		if err != nil {
			return nil, fmt.Errorf("kernel.kunitconfig %q: %w (name a .kunitconfig file or a folder holding one, e.g. fs/ext4)", p, err)
		}
		frags = append(frags, kconf.Fragment{File: path, Options: options})
	}
	return frags, nil
}
