package kube

import (
	"bytes"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"
)

func testGuest() Guest {
	return Guest{Name: "void-minimal", Image: "ghcr.io/example/simple-uml-void-minimal:6.12.118", Disk: "2Gi", UID: 1000, Entrypoint: "/usr/bin/simple-uml-guest", Memory: 256 << 20}
}

// TestPodMeetsRestricted holds the guest's pod to the admission controller's own checks of the
// "restricted" Pod Security Standard, at its latest version.
func TestPodMeetsRestricted(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pod := deployment(testGuest()).Spec.Template
	spec := pod.Spec
	level := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for _, r := range evaluator.EvaluatePod(level, &pod.ObjectMeta, &spec) {
		if !r.Allowed {
			t.Errorf("restricted: %s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
	// The checks bite: the same pod allowed to escalate is refused.
	loose := *spec.DeepCopy()
	*loose.Containers[0].SecurityContext.AllowPrivilegeEscalation = true
	refused := false
	for _, r := range evaluator.EvaluatePod(level, &pod.ObjectMeta, &loose) {
		refused = refused || !r.Allowed
	}
	if !refused {
		t.Error("a pod allowed to escalate its privileges passed the restricted checks")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a host path", v.Name)
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("the pod shares a namespace of the node")
	}
}

// TestManifestsReadBackStrictly: the YAML holds a claim and a deployment that read back into
// Kubernetes' types with no unknown field, and say what the guest needs.
func TestManifestsReadBackStrictly(t *testing.T) {
	data, err := Manifests(testGuest())
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(data, []byte("\n---\n"))
	if len(docs) != 2 {
		t.Fatalf("%d documents, want 2:\n%s", len(docs), data)
	}
	var claim corev1.PersistentVolumeClaim
	if err := yaml.UnmarshalStrict(docs[0], &claim); err != nil {
		t.Fatalf("the claim: %v\n%s", err, docs[0])
	}
	var deploy appsv1.Deployment
	if err := yaml.UnmarshalStrict(docs[1], &deploy); err != nil {
		t.Fatalf("the deployment: %v\n%s", err, docs[1])
	}
	if claim.Kind != "PersistentVolumeClaim" || claim.Spec.Resources.Requests.Storage().String() != "2Gi" {
		t.Errorf("claim: %s of %v", claim.Kind, claim.Spec.Resources.Requests)
	}
	pod := deploy.Spec.Template.Spec
	if deploy.Kind != "Deployment" || *deploy.Spec.Replicas != 1 || deploy.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("deployment: %s, %d replicas, strategy %s", deploy.Kind, *deploy.Spec.Replicas, deploy.Spec.Strategy.Type)
	}
	c := pod.Containers[0]
	if c.Image != testGuest().Image || strings.Join(c.ReadinessProbe.Exec.Command, " ") != "/usr/bin/simple-uml-guest ready" || c.VolumeMounts[0].MountPath != "/var/lib/simple-uml" {
		t.Errorf("container: %+v", c)
	}
	if pod.Volumes[0].PersistentVolumeClaim.ClaimName != claim.Name || claim.Spec.AccessModes[0] != corev1.ReadWriteOnce {
		t.Errorf("the pod mounts claim %s, the claim is %s (%v)", pod.Volumes[0].PersistentVolumeClaim.ClaimName, claim.Name, claim.Spec.AccessModes)
	}
	if memory := pod.Volumes[1].EmptyDir; memory == nil || memory.Medium != corev1.StorageMediumMemory || memory.SizeLimit.String() != "272Mi" || c.VolumeMounts[1].MountPath != "/tmp/simple-uml" {
		t.Errorf("UML's memory file's folder: %+v mounted at %+v", pod.Volumes[1], c.VolumeMounts)
	}
}

// TestManifestsRefuse: a name Kubernetes would refuse and a size it cannot read are errors that say
// what to write.
func TestManifestsRefuse(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Guest)
		want string
	}{
		{"upper case", func(g *Guest) { g.Name = "Void" }, "lower case"},
		{"an underscore", func(g *Guest) { g.Name = "void_min" }, "lower case"},
		{"a size", func(g *Guest) { g.Disk = "2 GB" }, "2Gi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGuest()
			tt.edit(&g)
			if _, err := Manifests(g); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to say %q", err, tt.want)
			}
		})
	}
}
