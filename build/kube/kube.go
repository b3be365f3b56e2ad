// Package kube writes the Kubernetes manifests that run a guest's OCI image (build/ociimage), or a
// lab's guests (a workload each, their LANs carried between the pods over VXLAN), on a cluster, under the "restricted" Pod Security Standard: not root, no privilege escalation, no
// capability, the runtime's seccomp profile, a read-only root filesystem, no host path, no host
// network, no device. The manifests are made of Kubernetes' own API types (k8s.io/api), so every
// field is one the API has, and the tests hold the pod to the admission controller's own checks
// (k8s.io/pod-security-admission).
package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/lan"
)

// Guest is one guest's workload.
type Guest struct {
	Name       string // the workload's name, a DNS label
	Image      string // the image reference the cluster pulls
	Disk       string // the size of the claim that holds the guest's disk and state (a quantity: "1Gi")
	UID        int64  // the image's user
	Entrypoint string // the image's entrypoint: `<entrypoint> ready` is the readiness probe
	Memory     int64  // the guest's memory in bytes (boot.mem): UML's memory file, on a memory-backed volume
	// Forwards are the ports the container forwards to the guest (boot.forward's host ports; the
	// entrypoint listens on them on the pod's addresses): a Service gives them to the cluster.
	Forwards []int
	// Lab and LabGuest, for a guest of a lab (LabManifests): the lab, which its container is given,
	// and which guest of it this is.
	Lab      *lab.Lab
	LabGuest string
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
	size, err := check(g)
	if err != nil {
		return nil, err
	}
	objects := []any{claim(g, size), deployment(g)}
	if len(g.Forwards) > 0 {
		objects = append(objects, service(g))
	}
	return documents(objects...)
}

// check refuses a workload name Kubernetes would refuse and a size it cannot read, saying what to
// write, and returns the size.
func check(g Guest) (resource.Quantity, error) {
	if errs := validation.IsDNS1123Label(g.Name); len(errs) > 0 {
		return resource.Quantity{}, fmt.Errorf("workload name %q: %s (a recipe's or a lab's and its guest's name for Kubernetes: lower case letters, digits and -, 63 in all)", g.Name, strings.Join(errs, "; "))
	}
	size, err := resource.ParseQuantity(g.Disk)
	if err != nil {
		return size, fmt.Errorf("disk size %q: %w (write it as Kubernetes does: 2Gi)", g.Disk, err)
	}
	return size, nil
}

// documents are objects as YAML documents.
func documents(objects ...any) ([]byte, error) {
	var out bytes.Buffer
	for i, obj := range objects {
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

// LabManifests are a lab's workloads, a guest each (guests, by the lab's guest names), spread over
// the cluster's nodes as it likes: each guest's claim and Deployment as Manifests makes them, with
// the lab and the guest's name in the container's environment (build/instance boots that guest and
// carries its LANs over VXLAN to the other guests' pods), a headless Service by which those pods
// find its pod, and one NetworkPolicy that lets only the lab's pods reach the tunnel's port.
func LabManifests(l *lab.Lab, guests map[string]Guest) ([]byte, error) {
	var objects []any
	var forwards []int
	for _, lg := range l.Guests {
		g, ok := guests[lg.Name]
		if !ok {
			return nil, fmt.Errorf("lab %s: no image for guest %s", l.Name, lg.Name)
		}
		g.Name, g.Lab, g.LabGuest = instance.LabWorkload(l.Name, lg.Name), l, lg.Name
		size, err := check(g)
		if err != nil {
			return nil, fmt.Errorf("lab %s, guest %s: %w", l.Name, lg.Name, err)
		}
		objects = append(objects, claim(g, size), deployment(g), service(g))
		forwards = append(forwards, g.Forwards...)
	}
	return documents(append(objects, networkPolicy(l, forwards))...)
}

// service gives a guest's forwarded ports to the cluster, under the workload's name. A lab guest's
// is headless, and also carries the tunnel: its name is its pod's own address, which the tunnel's
// datagrams come from and its peers look up.
func service(g Guest) *corev1.Service {
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: g.Name, Labels: labels(g)},
		Spec:       corev1.ServiceSpec{Selector: labels(g)},
	}
	for _, port := range g.Forwards {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("tcp-%d", port), Protocol: corev1.ProtocolTCP, Port: int32(port)})
	}
	if g.Lab != nil {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
		svc.Spec.PublishNotReadyAddresses = true // a guest's LANs must work before it is ready: the lab configures it over them
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "vxlan", Protocol: corev1.ProtocolUDP, Port: lan.VXLANPort})
	}
	return svc
}

// networkPolicy lets the lab's pods, and nobody else, send to its pods' tunnel port: VXLAN has no
// authentication of its own. The guests' forwarded ports stay open to all, as their Services say.
// (A cluster whose network plugin enforces no policy ignores it.)
func networkPolicy(l *lab.Lab, forwards []int) *networkingv1.NetworkPolicy {
	lab := map[string]string{labLabel: l.Name}
	port := intstr.FromInt32(lan.VXLANPort)
	policy := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: l.Name + "-lans", Labels: map[string]string{"app.kubernetes.io/part-of": "simple-uml", labLabel: l.Name}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: lab},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: lab}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolUDP), Port: &port}},
			}},
		},
	}
	if len(forwards) > 0 {
		open := networkingv1.NetworkPolicyIngressRule{} // from anywhere
		for _, f := range forwards {
			p := intstr.FromInt(f)
			open.Ports = append(open.Ports, networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: &p})
		}
		policy.Spec.Ingress = append(policy.Spec.Ingress, open)
	}
	return policy
}

func labels(g Guest) map[string]string {
	l := map[string]string{"app.kubernetes.io/name": g.Name, "app.kubernetes.io/part-of": "simple-uml"}
	if g.Lab != nil {
		l[labLabel] = g.Lab.Name
	}
	return l
}

// labLabel marks the pods of one lab: its network policy lets them, and only them, reach each
// other's tunnel.
const labLabel = "simple-uml/lab"

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
			// The tunnel's port is not declared: it is open to the pod's network anyway, and podman kube
			// play would publish a declared port on the host, where the lab's pods collide.
			Env: labEnv(g),
			// What the scheduler reserves: the guest's memory (its memory file, on the memory
			// volume, is charged to the pod) and the supervisor's. No limit: one below what UML
			// touches would kill the guest; a cluster's LimitRange can set one.
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceMemory: *resource.NewQuantity(g.Memory+supervisorMemory, resource.BinarySI),
				corev1.ResourceCPU:    resource.MustParse("100m"),
			}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{g.Entrypoint, "ready"}}},
				PeriodSeconds: 2,
			},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "disk", MountPath: instance.ContainerStateDir},
				{Name: memoryVolume(g), MountPath: instance.ContainerTempDir},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "disk", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: g.Name + "-disk"}}},
			// UML's memory file, and its run folder's sockets: in memory, never on the claim's disk.
			{Name: memoryVolume(g), VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
				Medium: corev1.StorageMediumMemory, SizeLimit: resource.NewQuantity(g.Memory+memoryMargin, resource.BinarySI),
			}}},
		},
	}
}

// labEnv tells a lab guest's container which guest of which lab it boots.
func labEnv(g Guest) []corev1.EnvVar {
	if g.Lab == nil {
		return nil
	}
	told := *g.Lab
	told.Path = ""                 // the author's host path is of no use in a pod
	data, _ := json.Marshal(&told) // a lab is plain data
	return []corev1.EnvVar{{Name: instance.LabVar, Value: string(data)}, {Name: instance.LabGuestVar, Value: g.LabGuest}}
}

// memoryVolume names the pod's memory-backed volume after its workload: podman kube play makes an
// emptyDir a volume of that name, which the pods of a lab would otherwise share.
func memoryVolume(g Guest) string {
	return strings.TrimRight(g.Name[:min(len(g.Name), 63-len("-memory"))], "-") + "-memory"
}

// supervisorMemory is what the entrypoint (the supervisor, UML's helpers, the page tables) holds
// beside the guest's memory: measured at 35-53 MB for a guest ready with mem=256M (docs/containers.md).
const supervisorMemory = 64 << 20

// memoryMargin is room beside UML's memory file in its folder: the run folder's sockets and files.
const memoryMargin = 16 << 20
