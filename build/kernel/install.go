package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/run"
)

// Install puts a built kernel and its record into dist. After a version change (a bump, another
// commit of a tree), the record lists the Kconfig options that are new or changed against the
// previous build's resolved config, so a reviewer sees what the new kernel brought. The old record is
// removed first, and written last, so that a half-replaced dist never looks complete.
func Install(ctx context.Context, dist string, rec *manifest.KernelRecord, b *Build, linux string, w io.Writer) error {
	rec.BuildEnv = b.Env()
	if prev, err := manifest.ReadKernelRecord(dist); err == nil && prev.Version != rec.Version {
		changes, err := kconf.Changes(filepath.Join(dist, ConfigName), filepath.Join(b.Out, ".config"))
		if err == nil {
			rec.ConfigBase, rec.ConfigChanges = prev.Version, changes
			reportConfigChanges(w, prev.Version, changes)
		}
	}
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dist, manifest.KernelRecordName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	made, err := outputFiles(ctx, dist, b, linux)
	if err != nil {
		return err
	}
	defer removeAll(made)
	if err := installDebug(dist, linux, b.Src); err != nil {
		return err
	}
	rec.Outputs = map[string]string{}
	for _, o := range Outputs {
		if rec.Outputs[o.Name], err = digest.File(made[o.Name]); err != nil {
			return err
		}
		if err := os.Rename(made[o.Name], filepath.Join(dist, o.Name)); err != nil {
			return err
		}
	}
	return files.WriteJSON(filepath.Join(dist, manifest.KernelRecordName), rec)
}

// outputFiles makes each output of Outputs in a temporary folder in dist (a killed run's is swept
// away by the next), to be renamed into place one by one.
func outputFiles(ctx context.Context, dist string, b *Build, linux string) (map[string]string, error) {
	tmp, err := os.MkdirTemp(dist, ".kernel.tmp-")
	if err != nil {
		return nil, err
	}
	made := map[string]string{"": tmp}
	license, err := licenseText(b.Src)
	if err != nil {
		removeAll(made)
		return nil, err
	}
	for _, o := range Outputs {
		path := filepath.Join(tmp, o.Name)
		made[o.Name] = path
		switch o.Name {
		case LinuxName:
			err = run.Run(ctx, run.Cmd{Args: []string{"strip", "-o", path, linux}})
		case LicenseName:
			err = files.WriteBytes(path, license, o.Mode)
		default:
			err = copyFile(filepath.Join(b.Out, o.From), path, o.Mode)
		}
		if err == nil {
			err = os.Chmod(path, o.Mode)
		}
		if err != nil {
			removeAll(made)
			return nil, fmt.Errorf("kernel output %s: %w", o.Name, err)
		}
	}
	return made, nil
}

func copyFile(from, to string, mode os.FileMode) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return files.WriteBytes(to, data, mode)
}

func removeAll(made map[string]string) { os.RemoveAll(made[""]) }

// installDebug keeps the unstripped kernel for gdb. Its debug information names kbuild.SourceRoot;
// gdb is told where that is on this machine.
func installDebug(dist, linux, src string) error {
	if err := files.LinkOrCopy(linux, filepath.Join(dist, DebugName)); err != nil {
		return fmt.Errorf("keep the unstripped kernel: %w", err)
	}
	return files.WriteBytes(filepath.Join(dist, DebugName+".source"), []byte(src+"\n"), 0o644)
}

// GDBSourceArgs tells gdb where the source tree of an unstripped kernel is on this machine: its debug
// information names kbuild.SourceRoot, and installDebug wrote the real folder beside it. None when
// the kernel has no such note.
func GDBSourceArgs(vmlinux string) []string {
	src, err := os.ReadFile(vmlinux + ".source")
	if err != nil {
		return nil
	}
	return []string{"-ex", "set substitute-path " + kbuild.SourceRoot + " " + strings.TrimSpace(string(src))}
}

// licenseText is the tree's COPYING followed by the licence texts it names for the kernel.
func licenseText(src string) ([]byte, error) {
	var out []byte
	for i, rel := range []string{"COPYING", "LICENSES/preferred/GPL-2.0", "LICENSES/exceptions/Linux-syscall-note"} {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			if i > 0 && errors.Is(err, os.ErrNotExist) {
				continue // older trees have only COPYING
			}
			return nil, fmt.Errorf("kernel licence: %w", err)
		}
		if i > 0 {
			out = append(out, []byte("\n----------------------------------------\n"+rel+"\n\n")...)
		}
		out = append(out, data...)
	}
	return out, nil
}

func reportConfigChanges(w io.Writer, base string, changes []string) {
	fmt.Fprintf(w, "%d Kconfig options new or changed since %s (recorded in %s):\n", len(changes), base, manifest.KernelRecordName)
	for i, c := range changes {
		if i == 30 {
			fmt.Fprintf(w, "  ... and %d more\n", len(changes)-30)
			break
		}
		fmt.Fprintf(w, "  %s\n", c)
	}
}
