package pipeline

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

// TestImageRefusals: what an image cannot hold is refused before anything is built, naming the
// setting or the missing file and the fix.
func TestImageRefusals(t *testing.T) {
	tests := []struct {
		name  string
		extra map[string]string
		want  []string
	}{
		{"a shared host folder", map[string]string{"SUML_BOOT_HOSTFS": t.TempDir()}, []string{"boot.hostfs", "SUML_BOOT_HOSTFS"}},
		{"no pair in dist", map[string]string{"SUML_DIST": t.TempDir()}, []string{"linux is missing", "go tool mage kernel rootfs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Image(context.Background(), loadConfig(t, guestDist(t, "6.12.117"), tt.extra), io.Discard)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to say %q", err, w)
				}
			}
		})
	}
}

// TestKubeManifests: mage kube writes the recipe's manifests beside its image, for the name `mage
// image` gives the image or the one asked for.
func TestKubeManifests(t *testing.T) {
	for _, ref := range []string{"", "registry.example/simple-uml-void-minimal@sha256:" + strings.Repeat("a", 64)} {
		cfg := loadConfig(t, guestDist(t, "6.12.117"), nil)
		path, err := Kube(context.Background(), cfg, "", ref, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := ref
		if want == "" {
			want = "localhost/simple-uml-void-minimal:"
		}
		if filepath.Base(path) != "void-minimal.kube.yaml" || !strings.Contains(string(data), "image: "+want) || !strings.Contains(string(data), "storage: 1Gi") {
			t.Errorf("%s:\n%s", path, data)
		}
	}
}

// TestKubeLabManifests: mage kube -lab writes a workload per guest of the lab, each pulling its
// recipe's image, and refuses a guest that boots an image file (a container boots its image's).
func TestKubeLabManifests(t *testing.T) {
	env := standInLabConfig(t, "configured")
	cfg := loadConfig(t, env, nil)
	path, err := Kube(context.Background(), cfg, "pair", "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name: pair-a\n", "name: pair-b\n", "kind: NetworkPolicy", "value: b\n", "image: localhost/simple-uml-void-minimal:"} {
		if filepath.Base(path) != "pair.lab.kube.yaml" || !strings.Contains(string(data), want) {
			t.Errorf("%s lacks %q:\n%s", path, want, data)
		}
	}
	os.WriteFile(filepath.Join(env["SUML_LABS"], "files.toml"), []byte("[[guest]]\nname = \"a\"\nimage = \"a.ext4\"\nroot_password = \"x\"\n"), 0o644)
	if _, err := Kube(context.Background(), cfg, "files", "", io.Discard); err == nil || !strings.Contains(err.Error(), "give it a recipe") {
		t.Errorf("a guest of an image file: %v", err)
	}
}

// TestKubeShippedLabs: the manifests of every lab shipped in labs/ read back strictly into
// Kubernetes' types, and every pod in them meets the restricted Pod Security Standard.
func TestKubeShippedLabs(t *testing.T) {
	env := guestDist(t, "6.12.117")
	env["SUML_LABS"] = filepath.Join(repoRoot(t), "labs")
	cfg := loadConfig(t, env, nil)
	shipped, _ := filepath.Glob(filepath.Join(env["SUML_LABS"], "*.toml"))
	if len(shipped) == 0 {
		t.Fatal("no lab in labs/")
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	level := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for _, file := range shipped {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			path, err := Kube(context.Background(), cfg, name, "", io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			pods := 0
			for _, doc := range bytes.Split(data, []byte("\n---\n")) {
				var meta metav1.TypeMeta
				yaml.Unmarshal(doc, &meta)
				var obj any
				switch meta.Kind {
				case "Deployment":
					obj = &appsv1.Deployment{}
				case "Service":
					obj = &corev1.Service{}
				case "PersistentVolumeClaim":
					obj = &corev1.PersistentVolumeClaim{}
				case "NetworkPolicy":
					obj = &networkingv1.NetworkPolicy{}
				default:
					t.Fatalf("a document of kind %q:\n%s", meta.Kind, doc)
				}
				if err := yaml.UnmarshalStrict(doc, obj); err != nil {
					t.Fatalf("%s: %v", meta.Kind, err)
				}
				if d, ok := obj.(*appsv1.Deployment); ok {
					pods++
					pod := d.Spec.Template
					for _, r := range evaluator.EvaluatePod(level, &pod.ObjectMeta, &pod.Spec) {
						if !r.Allowed {
							t.Errorf("%s, restricted: %s: %s", d.Name, r.ForbiddenReason, r.ForbiddenDetail)
						}
					}
				}
			}
			if pods == 0 {
				t.Errorf("no workload in %s", path)
			}
		})
	}
}
