package ociimage

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/simple-uml/simple-uml/build/artifact"
)

// libraryDirs are where the dynamic loader looks for a library without ld.so.cache, as Debian's
// glibc does: the image has no cache.
var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// programLibraries are the entries that let program run in an image without a C library of its own:
// its loader (PT_INTERP) and the shared libraries it needs, and theirs, copied from this host at the
// paths the loader finds them at, with their folders. A static program needs none.
func programLibraries(program string) ([]artifact.Entry, error) {
	files := map[string]bool{}
	var visit func(path string) error
	visit = func(path string) error {
		f, err := elf.Open(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				interp, err := readInterp(p)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				files[interp] = true
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, name := range needed {
			lib, err := findLibrary(name)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", path, name, err)
			}
			if !files[lib] {
				files[lib] = true
				if err := visit(lib); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(program); err != nil {
		return nil, err
	}
	return libraryEntries(files), nil
}

func readInterp(p *elf.Prog) (string, error) {
	data := make([]byte, p.Filesz)
	if _, err := p.ReadAt(data, 0); err != nil {
		return "", fmt.Errorf("its loader's name: %w", err)
	}
	return strings.TrimRight(string(data), "\x00"), nil
}

// findLibrary is where the loader finds library name.
func findLibrary(name string) (string, error) {
	for _, dir := range libraryDirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not in %s", strings.Join(libraryDirs, ", "))
}

// libraryEntries are the files (their contents followed through symbolic links) and their folders.
func libraryEntries(paths map[string]bool) []artifact.Entry {
	dirs := map[string]bool{}
	var entries []artifact.Entry
	for p := range paths {
		entries = append(entries, artifact.Entry{Name: p[1:], Source: p, Mode: 0o755})
		for d := filepath.Dir(p); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			entries = append(entries, artifact.Entry{Name: d[1:], Dir: true, Mode: 0o755})
		}
	}
	slices.SortFunc(entries, func(a, b artifact.Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries
}

// checkMachine refuses a kernel that is not an x86-64 program: images are made for amd64.
func checkMachine(program string) error {
	f, err := elf.Open(program)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", program, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("kernel %s is a program for %s: images are made for amd64 (x86-64) only", program, f.Machine)
	}
	return nil
}
