package kube

import (
	"bytes"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/lan"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
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
	if req := c.Resources.Requests; req.Memory().String() != "320Mi" || req.Cpu().String() != "100m" || len(c.Resources.Limits) != 0 {
		t.Errorf("resources: %+v (want the guest's memory and 64Mi, 100m of CPU, no limit)", c.Resources)
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

func testLab(t *testing.T) (*lab.Lab, map[string]Guest) {
	t.Helper()
	l, err := lab.Decode([]byte(`{"Name": "trio", "LANs": [{"Name": "left"}, {"Name": "right"}], "Guests": [
		{"Name": "a", "Interfaces": [{"LAN": "left", "Address": "10.9.1.1/24"}]},
		{"Name": "r", "Forwarding": true, "Interfaces": [{"LAN": "left", "Address": "10.9.1.254/24"}, {"LAN": "right", "Address": "10.9.2.254/24"}]},
		{"Name": "c", "Interfaces": [{"LAN": "right", "Address": "10.9.2.1/24"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	guests := map[string]Guest{}
	for _, g := range l.Guests {
		guests[g.Name] = testGuest()
	}
	return l, guests
}

// TestLabManifests: a claim, a Deployment and a headless Service per guest, then a network policy,
// all reading back strictly into Kubernetes' types. Each pod meets the restricted standard, is told
// its lab and guest (the lab as lab.Decode reads it), and is what its
// Service (on the tunnel's port) and the policy select; the policy admits the lab's pods alone, on that port alone.
func TestLabManifests(t *testing.T) {
	l, guests := testLab(t)
	data, err := LabManifests(l, guests)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(data, []byte("\n---\n"))
	if len(docs) != 3*3+1 {
		t.Fatalf("%d documents, want 10:\n%s", len(docs), data)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(docs[9], &np); err != nil || np.Kind != "NetworkPolicy" {
		t.Fatalf("the policy: %v\n%s", err, docs[9])
	}
	for i, g := range l.Guests {
		var deploy appsv1.Deployment
		var svc corev1.Service
		if err := yaml.UnmarshalStrict(docs[3*i+1], &deploy); err != nil {
			t.Fatalf("guest %s's deployment: %v", g.Name, err)
		}
		if err := yaml.UnmarshalStrict(docs[3*i+2], &svc); err != nil || svc.Kind != "Service" {
			t.Fatalf("guest %s's service: %v", g.Name, err)
		}
		pod := deploy.Spec.Template
		if deploy.Name != "trio-"+g.Name || svc.Name != deploy.Name || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("guest %s: deployment %s, service %s (cluster IP %q)", g.Name, deploy.Name, svc.Name, svc.Spec.ClusterIP)
		}
		for what, selector := range map[string]map[string]string{"service": svc.Spec.Selector, "policy": np.Spec.PodSelector.MatchLabels} {
			if !labelsMatch(selector, pod.Labels) {
				t.Errorf("the %s selects %v, not guest %s's pod (%v)", what, selector, g.Name, pod.Labels)
			}
		}
		level := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
		for _, r := range evaluator.EvaluatePod(level, &pod.ObjectMeta, &pod.Spec) {
			if !r.Allowed {
				t.Errorf("guest %s, restricted: %s: %s", g.Name, r.ForbiddenReason, r.ForbiddenDetail)
			}
		}
		c := pod.Spec.Containers[0]
		// podman kube play makes an emptyDir a volume by its name: each pod's own.
		if v := pod.Spec.Volumes[1]; v.EmptyDir == nil || v.Name != "trio-"+g.Name+"-memory" || c.VolumeMounts[1].Name != v.Name {
			t.Errorf("guest %s's memory volume %q, mounted as %q", g.Name, v.Name, c.VolumeMounts[1].Name)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		told, err := lab.Decode([]byte(env[instance.LabVar]))
		if err != nil || told.Name != "trio" || len(told.Guests) != 3 || env[instance.LabGuestVar] != g.Name {
			t.Errorf("guest %s's container is told %v %v", g.Name, env, err)
		}
		if len(c.Ports) != 0 || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Protocol != corev1.ProtocolUDP || svc.Spec.Ports[0].Port != lan.VXLANPort {
			t.Errorf("guest %s's ports: container %+v (none: podman would publish it), service %+v", g.Name, c.Ports, svc.Spec.Ports)
		}
	}
	rule := np.Spec.Ingress
	if len(rule) != 1 || len(rule[0].From) != 1 || !labelsMatch(rule[0].From[0].PodSelector.MatchLabels, map[string]string{labLabel: "trio"}) ||
		len(rule[0].Ports) != 1 || rule[0].Ports[0].Port.IntValue() != lan.VXLANPort || *rule[0].Ports[0].Protocol != corev1.ProtocolUDP {
		t.Errorf("the policy's ingress: %+v", rule)
	}
}

// labelsMatch says whether selector selects labels.
func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestLabManifestsRefuse: a guest with no image, and a lab whose workload names Kubernetes refuses.
func TestLabManifestsRefuse(t *testing.T) {
	l, guests := testLab(t)
	delete(guests, "c")
	if _, err := LabManifests(l, guests); err == nil || !strings.Contains(err.Error(), "no image for guest c") {
		t.Errorf("a guest without an image: %v", err)
	}
	l, guests = testLab(t)
	l.Name = strings.Repeat("x", 62)
	if _, err := LabManifests(l, guests); err == nil || !strings.Contains(err.Error(), "63 in all") {
		t.Errorf("a name too long: %v", err)
	}
}

// TestServiceForForwards: a guest's forwarded ports become a Service that selects its pod; a lab
// guest's headless Service carries them beside the tunnel.
func TestServiceForForwards(t *testing.T) {
	g := testGuest()
	g.Forwards = []int{2222, 8080}
	data, err := Manifests(g)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(data, []byte("\n---\n"))
	var svc corev1.Service
	var deploy appsv1.Deployment
	if len(docs) != 3 || yaml.UnmarshalStrict(docs[2], &svc) != nil || yaml.UnmarshalStrict(docs[1], &deploy) != nil {
		t.Fatalf("want a claim, a deployment and a service:\n%s", data)
	}
	if svc.Spec.ClusterIP != "" || len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != 2222 || svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP || !labelsMatch(svc.Spec.Selector, deploy.Spec.Template.Labels) {
		t.Errorf("service %+v", svc.Spec)
	}
	if data, _ := Manifests(testGuest()); bytes.Contains(data, []byte("kind: Service")) {
		t.Error("a guest with no forward got a Service")
	}

	l, guests := testLab(t)
	l.Path = "/home/author/labs/trio.toml"
	a := guests["a"]
	a.Forwards = []int{2222}
	guests["a"] = a
	data, err = LabManifests(l, guests)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(bytes.Split(data, []byte("\n---\n"))[2], &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != 2222 || svc.Spec.Ports[1].Port != lan.VXLANPort {
		t.Errorf("lab guest a's service %+v", svc.Spec)
	}
	// The network policy lets the forward through from anywhere, beside the tunnel from the lab.
	var np networkingv1.NetworkPolicy
	docs = bytes.Split(data, []byte("\n---\n"))
	if err := yaml.UnmarshalStrict(docs[len(docs)-1], &np); err != nil {
		t.Fatal(err)
	}
	if in := np.Spec.Ingress; len(in) != 2 || len(in[1].From) != 0 || len(in[1].Ports) != 1 || in[1].Ports[0].Port.IntValue() != 2222 || *in[1].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Errorf("the policy's ingress: %+v", in)
	}
	if bytes.Contains(data, []byte("/home/author")) {
		t.Error("the lab file's host path went into the pods' environment")
	}
}
