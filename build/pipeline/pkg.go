package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/userpkg"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// PkgRequest is what `mage pkg` was asked for.
type PkgRequest struct {
	Template string // the template file
	Out      string // the folder the package goes into; empty: dist/
}

// Pkg makes the template's xbps package, as xbps-create would, into req.Out or dist/. A template
// without a date takes SOURCE_DATE_EPOCH's.
func Pkg(ctx context.Context, cfg config.Config, getenv func(string) string, req PkgRequest, w io.Writer) (*userpkg.Built, error) {
	out := req.Out
	if out == "" {
		out = cfg.Paths.Dist
	}
	var (
		tpl   *userpkg.Template
		built *userpkg.Built
	)
	timer := newStepTimer()
	err := runSteps(ctx, timer,
		step{name: "template", run: func(context.Context) (err error) {
			tpl, err = userpkg.LoadTemplate(req.Template)
			return err
		}},
		step{name: "package", run: func(context.Context) error {
			date, _, err := config.SourceDateEpoch(getenv)
			if err != nil {
				return err
			}
			built, err = userpkg.Build(tpl, userpkg.BuildOptions{OutDir: out, Date: date})
			return err
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("pkg: %w", err)
	}
	if built.RemovedSig != "" {
		fmt.Fprintf(w, "pkg: removed %s, the signature of the package this one replaces: go tool mage repo signs it again\n", built.RemovedSig)
	}
	fmt.Fprintf(w, "pkg: %s (%d entries, %d bytes, sha256 %s) in %s\n", built.Path, built.Entries, built.Size, built.SHA256, timer)
	return built, nil
}

// RepoRequest is what `mage repo` was asked for.
type RepoRequest struct {
	Dir      string // the folder of .xbps files, where the repodata goes
	Key      string // a PEM file of the RSA private key that signs; empty: unsigned
	SignedBy string // the signer's name, with Key
	Arch     string // the architecture whose repodata to write; empty: each one among the packages
}

// Repo makes a folder of packages a repository, as xbps-rindex -a (and, with a key, --sign-pkg and
// --sign) would, and says the key's fingerprint for a recipe's keys.
func Repo(ctx context.Context, cfg config.Config, req RepoRequest, w io.Writer) (*userpkg.Repo, error) {
	opts := userpkg.RepoOptions{SignedBy: req.SignedBy}
	if req.Arch != "" {
		opts.Arches = []string{req.Arch}
	}
	var repo *userpkg.Repo
	timer := newStepTimer()
	err := runSteps(ctx, timer,
		step{name: "key", skip: func() bool { return req.Key == "" }, run: func(context.Context) error {
			pemText, err := os.ReadFile(req.Key)
			if err != nil {
				return err
			}
			if opts.Key, err = xbps.ParsePrivateKey(pemText); err != nil {
				return fmt.Errorf("%s: %w", req.Key, err)
			}
			if req.SignedBy == "" {
				return fmt.Errorf(`a signed repository names its signer: add -signedBy="Your Name <you@example.org>"`)
			}
			return nil
		}},
		step{name: "sign and index", run: func(context.Context) (err error) {
			repo, err = userpkg.IndexFolder(req.Dir, opts)
			return err
		}},
	)
	if err != nil {
		return nil, fmt.Errorf("repo: %w", err)
	}
	for _, ix := range repo.Indexes {
		fmt.Fprintf(w, "repo: %s/%s-repodata: %d packages\n", req.Dir, ix.Arch, len(ix.Entries))
	}
	if len(repo.Skipped) > 0 {
		fmt.Fprintf(w, "repo: not in any index (older, or another architecture): %s\n", strings.Join(repo.Skipped, ", "))
	}
	if repo.Fingerprint == "" {
		fmt.Fprintf(w, "repo: unsigned; a recipe takes it with allow_unsigned = true (or sign it: -key=<RSA key PEM> -signedBy=<name>) (%s)\n", timer)
		return repo, nil
	}
	fmt.Fprintf(w, "repo: signed %d packages by %q, key fingerprint %s (%s)\n", len(repo.Packages), req.SignedBy, repo.Fingerprint, timer)
	abs, err := filepath.Abs(req.Dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "repo: in a recipe:\n\n[[repositories]]\nurl = %q\nkeys = [%q]\n\n", abs, repo.Fingerprint)
	return repo, nil
}
