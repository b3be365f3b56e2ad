// Package kube writes the Kubernetes manifests that run a guest's OCI image (build/ociimage) on a
// cluster, under the "restricted" Pod Security Standard: not root, no privilege escalation, no
// capability, the runtime's seccomp profile, a read-only root filesystem, no host path, no host
// network, no device. The manifests are made of Kubernetes' own API types (k8s.io/api), so every
// field is one the API has, and the tests hold the pod to the admission controller's own checks
// (k8s.io/pod-security-admission).
package kube

import (
	"bytes"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/simple-uml/simple-uml/build/instance"
)

// Guest is one guest's workload.
type Guest struct {
	Name       string // the workload's name, a DNS label
	Image      string // the image reference the cluster pulls
	Disk       string // the size of the claim that holds the guest's disk and state (a quantity: "1Gi")
	UID        int64  // the image's user
	Entrypoint string // the image's entrypoint: `<entrypoint> ready` is the readiness probe
	Memory     int64  // the guest's memory in bytes (boot.mem): UML's memory file, on a memory-backed volume
}

// Manifests are a guest's workload as YAML documents: a PersistentVolumeClaim that keeps the guest's
// disk (its copy-on-write file) and state, and a Deployment of one replica that runs the image with
// the claim as its state folder.
//
// A Deployment rather than a StatefulSet, as `podman kube play`, which the tests run the manifests
// with, plays no StatefulSet. Its Recreate strategy ends the old pod before a rollout starts the new
// one. A replacement started while the old pod still ends (an eviction, a drain) may mount the
// ReadWriteOnce claim on the same node; the instance's lock on the claim then keeps its supervisor
// from booting until the old one has ended. (ReadWriteOncePod would say so to the cluster, but only
// CSI volumes have it, which the local provisioners of kind and k3s are not.)
func Manifests(g Guest) ([]byte, error) {
	if errs := validation.IsDNS1123Label(g.Name); len(errs) > 0 {
		return nil, fmt.Errorf("workload name %q: %s (a recipe's name for Kubernetes: lower case letters, digits and -)", g.Name, strings.Join(errs, "; "))
	}
	size, err := resource.ParseQuantity(g.Disk)
	if err != nil {
		return nil, fmt.Errorf("disk size %q: %w (write it as Kubernetes does: 2Gi)", g.Disk, err)
	}
	var out bytes.Buffer
	for i, obj := range []any{claim(g, size), deployment(g)} {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	return out.Bytes(), nil
}

func labels(g Guest) map[string]string {
	return map[string]string{"app.kubernetes.io/name": g.Name, "app.kubernetes.io/part-of": "simple-uml"}
}

func claim(g Guest, size resource.Quantity) *corev1.PersistentVolumeClaim {
	uid := fmt.Sprint(g.UID)
	return &corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{
			Name: g.Name + "-disk", Labels: labels(g),
			// podman kube play makes the volume its user's so; a cluster uses fsGroup.
			Annotations: map[string]string{"volume.podman.io/uid": uid, "volume.podman.io/gid": uid},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
		},
	}
}

func deployment(g Guest) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Labels: labels(g)},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels(g)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}, // one writer of the disk
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(g)},
				Spec:       PodSpec(g),
			},
		},
	}
}

// PodSpec is the guest's pod.
func PodSpec(g Guest) corev1.PodSpec {
	return corev1.PodSpec{
		AutomountServiceAccountToken: ptr.To(false), // the guest has no business with the cluster's API
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(g.UID), RunAsGroup: ptr.To(g.UID), FSGroup: ptr.To(g.UID),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            "guest",
			Image:           g.Image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				ReadOnlyRootFilesystem:   ptr.To(true), // the guest writes its state folder alone
			},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{g.Entrypoint, "ready"}}},
				PeriodSeconds: 2,
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "disk", MountPath: instance.ContainerStateDir},
				{Name: "memory", MountPath: instance.ContainerTempDir},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "disk", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: g.Name + "-disk"}}},
			// UML's memory file, and its run folder's sockets: in memory, never on the claim's disk.
			{Name: "memory", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: resource.NewQuantity(g.Memory+memoryMargin, resource.BinarySI),
			}}},
		},
	}
}

// memoryMargin is room beside UML's memory file in its folder: the run folder's sockets and files.
const memoryMargin = 16 << 20
