// Package rootfs assembles a Void Linux root filesystem from xbps packages without root rights: a
// recipe names repositories, packages and settings; Stage unpacks verified packages into a tree with
// xbps's database; the image and tarball are made from it with files owned by root.
package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/ident"

	"github.com/simple-uml/simple-uml/build/xbps"
)

// Repository is one [[repositories]] entry of a recipe.
type Repository struct {
	URL string `toml:"url"`
	// Keys are the xbps fingerprints (colon-separated MD5) trusted to sign this repository.
	Keys []string `toml:"keys"`
	// AllowLegacySig accepts the pre-0.60 ".sig" signature when a package has no ".sig2".
	AllowLegacySig bool `toml:"allow_legacy_sig"`
	// AllowUnsigned accepts a repository without a key (only size and sha256 are checked then).
	AllowUnsigned bool `toml:"allow_unsigned"`
}

// PublicRepo is a repository as images and release assets name it: its URL, or "local:<folder name>"
// for a folder on this machine, whose path (a home folder, a user name) must not leave the host.
func PublicRepo(url string) string {
	if fetch.IsURL(url) {
		return url
	}
	return "local:" + filepath.Base(url)
}

// Recipe is a rootfs-recipes/<name>.toml file.
type Recipe struct {
	Name           string       `toml:"-"`
	Path           string       `toml:"-"`
	Description    string       `toml:"description"`
	Arch           string       `toml:"arch"`
	Repositories   []Repository `toml:"repositories"`
	Packages       []string     `toml:"packages"`
	ImageSize      string       `toml:"image_size"`
	Hostname       string       `toml:"hostname"`
	RootPassword   string       `toml:"root_password"`
	RootPasswdHash string       `toml:"root_password_hash"`
	AuthorizedKeys []string     `toml:"authorized_keys"`
	Services       []string     `toml:"services"`
	Getty          string       `toml:"getty"`
	Overlay        string       `toml:"overlay"`
	Timezone       string       `toml:"timezone"`
}

// VoidKeys are the fingerprints of Void Linux's official repository keys.
var VoidKeys = map[string]string{
	"60:ae:0c:d6:f0:95:17:80:bc:93:46:7a:89:af:a3:2d": "Void Linux (main repositories)",
	"3d:b9:c0:50:41:a7:68:4c:2e:2c:a9:a2:5a:04:b7:3f": "Void Linux (musl repositories)",
}

var (
	recipeName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	svcName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9@._-]*$`)
	hostName   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	ttyName    = regexp.MustCompile(`^(tty[0-9]+|ttyS[0-9]+|console|hvc[0-9]+)$`)
)

// LoadRecipe reads dir/<name>.toml. Unknown keys are errors so a misspelt setting is not ignored.
func LoadRecipe(dir, name string) (*Recipe, error) {
	if !recipeName.MatchString(name) {
		return nil, fmt.Errorf("recipe name %q: use lower-case letters, digits, '.', '_' and '-'", name)
	}
	path := filepath.Join(dir, name+".toml")
	r := &Recipe{Name: name, Path: path}
	err := config.DecodeFile(path, r, "rootfs-recipes/README.md")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ident.Unknown("recipe", name, dir, config.TOMLNames(dir))
	}
	if err != nil {
		return nil, fmt.Errorf("recipe %w", err)
	}
	if r.Overlay != "" && !filepath.IsAbs(r.Overlay) {
		r.Overlay = filepath.Join(dir, r.Overlay)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("recipe %s: %w", path, err)
	}
	return r, nil
}

func (r *Recipe) validate() error {
	switch r.Arch {
	case "x86_64", "x86_64-musl":
	case "":
		return errors.New("arch is empty: set x86_64 or x86_64-musl")
	default:
		return fmt.Errorf("arch %q: a UML guest on x86_64 runs x86_64 or x86_64-musl", r.Arch)
	}
	if len(r.Repositories) == 0 {
		return errors.New("no [[repositories]]: name at least one (url and keys)")
	}
	for i := range r.Repositories {
		repo := &r.Repositories[i]
		repo.URL = strings.TrimRight(repo.URL, "/")
		if repo.URL == "" {
			return fmt.Errorf("repositories[%d] has no url", i)
		}
		if len(repo.Keys) == 0 && !repo.AllowUnsigned {
			return fmt.Errorf("repository %s: no trusted keys; list its key fingerprint in keys (or set allow_unsigned = true)", repo.URL)
		}
		for j, k := range repo.Keys {
			repo.Keys[j] = xbps.NormalizeFingerprint(k)
			if len(repo.Keys[j]) != 47 {
				return fmt.Errorf("repository %s: key %q is not an xbps fingerprint (16 colon-separated hex bytes)", repo.URL, k)
			}
		}
	}
	if len(r.Packages) == 0 {
		return errors.New("packages is empty")
	}
	for _, p := range r.Packages {
		if _, err := xbps.ParsePattern(p); err != nil {
			return err
		}
	}
	if _, err := r.ImageBytes(); err != nil {
		return err
	}
	if r.Hostname != "" && !hostName.MatchString(r.Hostname) {
		return fmt.Errorf("hostname %q is not a valid host name", r.Hostname)
	}
	if r.RootPassword != "" && r.RootPasswdHash != "" {
		return errors.New("set root_password or root_password_hash, not both")
	}
	if strings.ContainsAny(r.RootPassword+r.RootPasswdHash, ":\n") {
		return errors.New("root password must not contain ':' or a newline")
	}
	for _, s := range r.Services {
		if !svcName.MatchString(s) {
			return fmt.Errorf("service %q is not a runit service name", s)
		}
	}
	if r.Getty != "" && !ttyName.MatchString(r.Getty) {
		return fmt.Errorf("getty %q: name a console device such as tty0 (UML's con0) or ttyS0", r.Getty)
	}
	for _, k := range r.AuthorizedKeys {
		if strings.Contains(k, "\n") || len(strings.Fields(k)) < 2 {
			return fmt.Errorf("authorized_keys entry %q is not one OpenSSH public key line", k)
		}
	}
	if r.Overlay != "" {
		// A link to the folder is the folder: walking the link itself would copy (and hash) nothing.
		real, err := filepath.EvalSymlinks(r.Overlay)
		if fi, serr := os.Stat(real); err != nil || serr != nil || !fi.IsDir() {
			return fmt.Errorf("overlay %s is not a folder", r.Overlay)
		}
		r.Overlay = real
	}
	return nil
}

// ImageBytes parses image_size ("512M", "2G", or bytes).
func (r *Recipe) ImageBytes() (int64, error) {
	s := strings.TrimSpace(r.ImageSize)
	if s == "" {
		return 0, errors.New("image_size is empty: set e.g. \"2G\"")
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'K', 'k':
		mult = 1 << 10
	case 'M', 'm':
		mult = 1 << 20
	case 'G', 'g':
		mult = 1 << 30
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("image_size %q: want a size such as 512M or 2G", r.ImageSize)
	}
	if n*mult < 8<<20 {
		return 0, fmt.Errorf("image_size %q is below 8M, too small for ext4 with a journal", r.ImageSize)
	}
	return n * mult, nil
}

// Digest hashes the recipe file and every overlay file (names, modes, contents), so a change to
// either is a new input.
func (r *Recipe) Digest() (string, error) {
	h := sha256.New()
	data, err := os.ReadFile(r.Path)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "recipe %d\n", len(data))
	h.Write(data)
	if r.Overlay != "" {
		err := filepath.WalkDir(r.Overlay, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(r.Overlay, p)
			fi, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %o\n", rel, fi.Mode())
			switch {
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, "%d\n", len(b))
				h.Write(b)
			case fi.Mode()&fs.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				fmt.Fprintf(h, "-> %s\n", l)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("overlay: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
