package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/kernelorg"
	"github.com/simple-uml/simple-uml/build/release"
)

// BumpBranchPrefix names the branches of bump pull requests: bump/linux-<version>.
const BumpBranchPrefix = "bump/linux-"

// BumpPROptions are the switches of `mage bumpPR`.
type BumpPROptions struct {
	Base     string // the branch to propose to; "" means GITHUB_REF_NAME, else main
	Workflow string // the CI workflow file to start on the bump branch; "" for none
	AllowEOL bool
}

// BumpPR runs Bump and, when the pin changed, proposes the new kernel.lock as the one open bump pull
// request of GITHUB_REPOSITORY (see release.Propose). When the pin is current, open bump pull requests
// are closed: the base already has what they propose or newer.
func BumpPR(ctx context.Context, cfg config.Config, getenv func(string) string, opts BumpPROptions, w io.Writer) (*release.Proposal, error) {
	p, err := release.FromEnv(getenv, "contents:write and pull-requests:write (actions:write to start CI on the branch)", w)
	if err != nil {
		return nil, err
	}
	base := opts.Base
	if base == "" {
		base = getenv("GITHUB_REF_NAME")
	}
	if base == "" {
		base = "main"
	}
	lockPath := filepath.Join(cfg.Root, config.LockName)
	res, err := Bump(ctx, cfg, BumpOptions{AllowEOL: opts.AllowEOL, LockPath: lockPath}, w)
	if err != nil {
		return nil, err
	}
	if !res.Changed {
		prop := &release.Proposal{}
		reason := fmt.Sprintf("%s on %s already pins linux %s, the newest of series %s.", config.LockName, base, res.Old.Version, cfg.Kernel.Series)
		prop.Closed, err = p.Supersede(ctx, &prop.APICalls, BumpBranchPrefix, "", reason)
		return prop, err
	}
	lock, err := os.ReadFile(lockPath)
	if err != nil {
		return nil, err
	}
	change := BumpChange(cfg, res, lock)
	change.Base, change.Workflow = base, opts.Workflow
	return p.Propose(ctx, change)
}

// BumpChange is the pull request a bump makes: the rewritten kernel.lock on bump/linux-<version>, with
// what was verified and where the changelog is. Everything in it follows from the new pin, so every
// run for one version proposes the same commit.
func BumpChange(cfg config.Config, res BumpResult, lock []byte) release.Change {
	v := res.New.Version
	title := "Bump Linux to " + v
	changelog := fmt.Sprintf("%s/%s/ChangeLog-%s", strings.TrimRight(cfg.Kernel.Mirror, "/"), kernelorg.Dir(v), v)
	released := res.New.Released
	if released == "" {
		released = "date not in releases.json"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Bumps the pinned kernel from **%s** to **%s** (series %s).\n\n", orNone(res.Old.Version), v, cfg.Kernel.Series)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| released | %s |\n", released)
	fmt.Fprintf(&b, "| tarball | `linux-%s.tar.xz` |\n", v)
	fmt.Fprintf(&b, "| sha256 | `%s` |\n", res.New.SHA256)
	fmt.Fprintf(&b, "| verified | listed in kernel.org's sha256sums.asc, signature checked against %s |\n", strings.Join(cfg.Kernel.TrustedKeys, ", "))
	fmt.Fprintf(&b, "| changelog | %s |\n\n", changelog)
	b.WriteString("CI on this branch builds the kernel (its log lists the Kconfig options new or changed since the previous version), builds the root filesystems and boot-tests them.\n\n")
	b.WriteString("Opened by `go tool mage bumpPR`; a newer release closes this pull request and opens its own.\n")
	msg := fmt.Sprintf("%s\n\nsha256 %s, released %s, verified against kernel.org's signed sha256sums.asc.\nChangelog: %s\n", title, res.New.SHA256, released, changelog)
	return release.Change{Branch: BumpBranchPrefix + v, Prefix: BumpBranchPrefix, Title: title, Body: b.String(),
		CommitMessage: msg, Files: map[string][]byte{config.LockName: lock}}
}
