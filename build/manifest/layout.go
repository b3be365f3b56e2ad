package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
)

// RootfsFiles names a recipe's files in dist/.
func RootfsFiles(dist, recipe string) (image, tarball, record string) {
	return filepath.Join(dist, recipe+".ext4"), filepath.Join(dist, recipe+".tar.zst"), filepath.Join(dist, recipe+".json")
}

// ReadRootfsRecords reads every root filesystem record in dist/, sorted by recipe.
func ReadRootfsRecords(dist string) ([]RootfsRecord, error) {
	matches, _ := filepath.Glob(filepath.Join(dist, "*.json"))
	var out []RootfsRecord
	for _, p := range matches {
		if filepath.Base(p) == KernelRecordName {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r RootfsRecord
		err = json.Unmarshal(data, &r)
		if err != nil || r.Recipe == "" || len(r.Packages) == 0 {
			// A JSON file beside an image of its name is that image's record: a broken one must not
			// make the release leave the root filesystem out without a word.
			name := strings.TrimSuffix(filepath.Base(p), ".json")
			if image, _, _ := RootfsFiles(dist, name); files.Exists(image) {
				return nil, fmt.Errorf("%s, the record of %s, is not a readable root filesystem record (%v): rebuild it with `go tool mage rootfs -recipe=%s`", p, image, err, name)
			}
			continue
		}
		image, tarball, _ := RootfsFiles(dist, r.Recipe)
		for _, f := range []string{image, tarball} {
			if want, ok := r.Outputs[filepath.Base(f)]; !ok || !want.Unchanged(f) {
				return nil, fmt.Errorf("%s does not match its record %s: rebuild with `go tool mage rootfs`", f, p)
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Recipe < out[j].Recipe })
	return out, nil
}

// BuildTime is the kernel's KBUILD_BUILD_TIMESTAMP: its release's time, for a tarball.
func (r *KernelRecord) BuildTime() (time.Time, error) {
	for _, e := range r.BuildEnv {
		if v, ok := strings.CutPrefix(e, "KBUILD_BUILD_TIMESTAMP="); ok {
			t, err := time.Parse(time.RFC1123Z, v)
			if err != nil {
				return time.Time{}, fmt.Errorf("kernel record: KBUILD_BUILD_TIMESTAMP %q: %w", v, err)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("kernel record has no KBUILD_BUILD_TIMESTAMP; set SOURCE_DATE_EPOCH")
}
