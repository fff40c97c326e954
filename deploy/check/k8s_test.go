package check

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of a kustomization.yaml the checks read. Strict decoding catches misspelt fields.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []any  `json:"labels"`
	Resources  []string
	Images     []struct {
		Name   string `json:"name"`
		NewTag string `json:"newTag"`
	} `json:"images"`
	Replicas []struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	} `json:"replicas"`
	ConfigMapGenerator []generator `json:"configMapGenerator"`
	SecretGenerator    []generator `json:"secretGenerator"`
	Patches            []struct {
		Path   string         `json:"path"`
		Target map[string]any `json:"target"`
	} `json:"patches"`
}

type generator struct {
	Name     string   `json:"name"`
	Behavior string   `json:"behavior"`
	Files    []string `json:"files"`
	Literals []string `json:"literals"`
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	var k kustomization
	if err := yaml.UnmarshalStrict(readRepoFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	return k
}

// k8sObjects decodes every manifest the base lists, by kind and name.
type k8sObjects struct {
	deployments map[string]appsv1.Deployment
	services    map[string]corev1.Service
	pdbs        map[string]policyv1.PodDisruptionBudget
	jobs        map[string]batchv1.Job
	secrets     map[string]corev1.Secret
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func loadBase(t *testing.T) (kustomization, k8sObjects) {
	t.Helper()
	const dir = "deploy/k8s/base"
	k := readKustomization(t, dir)
	objs := k8sObjects{map[string]appsv1.Deployment{}, map[string]corev1.Service{}, map[string]policyv1.PodDisruptionBudget{},
		map[string]batchv1.Job{}, map[string]corev1.Secret{}}
	for _, res := range k.Resources {
		for i, doc := range docSeparator.Split(string(readRepoFile(t, filepath.Join(dir, res))), -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var meta struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s document %d: %v", res, i, err)
			}
			var err error
			switch meta.Kind {
			case "Deployment":
				var o appsv1.Deployment
				err = yaml.UnmarshalStrict([]byte(doc), &o)
				objs.deployments[meta.Metadata.Name] = o
			case "Service":
				var o corev1.Service
				err = yaml.UnmarshalStrict([]byte(doc), &o)
				objs.services[meta.Metadata.Name] = o
			case "PodDisruptionBudget":
				var o policyv1.PodDisruptionBudget
				err = yaml.UnmarshalStrict([]byte(doc), &o)
				objs.pdbs[meta.Metadata.Name] = o
			case "Job":
				var o batchv1.Job
				err = yaml.UnmarshalStrict([]byte(doc), &o)
				objs.jobs[meta.Metadata.Name] = o
			case "Secret":
				var o corev1.Secret
				err = yaml.UnmarshalStrict([]byte(doc), &o)
				objs.secrets[meta.Metadata.Name] = o
			default:
				t.Fatalf("%s document %d: unexpected kind %q", res, i, meta.Kind)
			}
			if err != nil {
				t.Fatalf("%s document %d (%s %s): %v", res, i, meta.Kind, meta.Metadata.Name, err)
			}
		}
	}
	return k, objs
}

func TestKustomizationFilesExist(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"deploy/k8s/base", "deploy/k8s/overlays/production", "deploy/k8s/overlays/kafka-sasl"} {
		k := readKustomization(t, dir)
		var paths []string
		paths = append(paths, k.Resources...)
		for _, p := range k.Patches {
			paths = append(paths, p.Path)
		}
		for _, g := range append(slices.Clone(k.ConfigMapGenerator), k.SecretGenerator...) {
			for _, f := range g.Files {
				_, src, ok := strings.Cut(f, "=")
				if !ok {
					src = f
				}
				// The operator supplies secrets/ (git-ignored); `kubectl apply -k` fails loudly without it.
				if strings.HasPrefix(src, "secrets/") {
					continue
				}
				paths = append(paths, src)
			}
		}
		for _, p := range paths {
			if _, err := os.Stat(filepath.Join(repoRoot, dir, p)); err != nil {
				t.Errorf("%s/kustomization.yaml lists %s: %v", dir, p, err)
			}
		}
	}
}

func TestK8sTopologyIsTheExample(t *testing.T) {
	t.Parallel()
	if !bytes.Equal(readRepoFile(t, "deploy/k8s/base/topology.yaml"), readRepoFile(t, "config/topology.yaml")) {
		t.Fatal("deploy/k8s/base/topology.yaml differs from config/topology.yaml: cp config/topology.yaml deploy/k8s/base/")
	}
}

func TestK8sDeployments(t *testing.T) {
	t.Parallel()
	_, objs := loadBase(t)
	for _, name := range Services() {
		t.Run(name, func(t *testing.T) {
			d, ok := objs.deployments[name]
			if !ok {
				t.Fatal("no Deployment")
			}
			pod := d.Spec.Template
			if d.Spec.Selector == nil || !subset(d.Spec.Selector.MatchLabels, pod.Labels) {
				t.Errorf("selector %v does not select the pod labels %v", d.Spec.Selector, pod.Labels)
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			if !strings.HasPrefix(c.Image, "greenwave/"+name+":") {
				t.Errorf("image %q, want greenwave/%s:<tag>", c.Image, name)
			}
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if ports["http"] != 8080 || ports["grpc"] != 9090 {
				t.Errorf("ports %v, want http 8080 and grpc 9090 (greenwave-env sets HTTP_ADDR and GRPC_ADDR)", ports)
			}
			checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")
			checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
				if req.IsZero() || lim.IsZero() {
					t.Errorf("%s request %v / limit %v: both must be set", r, req.String(), lim.String())
				} else if req.Cmp(lim) > 0 {
					t.Errorf("%s request %s exceeds its limit %s", r, req.String(), lim.String())
				}
			}
			known := Names(serviceVars[name])
			for _, v := range RuntimeVars {
				known[v] = true
			}
			for _, e := range c.Env {
				if !known[e.Name] {
					t.Errorf("sets %s, which %s does not read", e.Name, name)
				}
			}
			if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != "greenwave-env" {
				t.Errorf("envFrom %v, want the greenwave-env ConfigMap", c.EnvFrom)
			}
			if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Error("pod does not require runAsNonRoot")
			}
			if svc, ok := objs.services[name]; !ok || !subset(svc.Spec.Selector, pod.Labels) {
				t.Errorf("no Service selecting the pods (%v)", svc.Spec.Selector)
			}
			if pdb, ok := objs.pdbs[name]; !ok || pdb.Spec.Selector == nil || !subset(pdb.Spec.Selector.MatchLabels, pod.Labels) {
				t.Error("no PodDisruptionBudget selecting the pods")
			}
		})
	}
}

func checkProbe(t *testing.T, kind string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: missing or not httpGet", kind)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
		t.Errorf("%s probe: GET %s on port %s, want %s on port http", kind, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
}

func subset(want, have map[string]string) bool {
	if len(want) == 0 {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func TestK8sSharedEnvironmentIsKnown(t *testing.T) {
	t.Parallel()
	common := commonVars()
	for _, dir := range []string{"deploy/k8s/base", "deploy/k8s/overlays/production", "deploy/k8s/overlays/kafka-sasl"} {
		for _, g := range readKustomization(t, dir).ConfigMapGenerator {
			if g.Name != "greenwave-env" {
				continue
			}
			for _, lit := range g.Literals {
				name, _, _ := strings.Cut(lit, "=")
				if !common[name] {
					t.Errorf("%s: greenwave-env sets %s, which not every service reads", dir, name)
				}
			}
		}
	}
}

func TestK8sTopicsJob(t *testing.T) {
	t.Parallel()
	_, objs := loadBase(t)
	job, ok := objs.jobs["greenwave-topics"]
	if !ok {
		t.Fatal("no greenwave-topics Job")
	}
	c := job.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "greenwave/greenwave:") || len(c.Args) < 2 || c.Args[0] != "topics" || c.Args[1] != "ensure" {
		t.Errorf("the Job runs %s %v, want greenwave/greenwave topics ensure", c.Image, c.Args)
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("the Job has no memory limit")
	}
}

// TestK8sReplicasFitPartitions checks the production overlay never runs more instances of a service than
// there are partitions: the extra instances would sit idle in the consumer group.
func TestK8sReplicasFitPartitions(t *testing.T) {
	t.Parallel()
	const dir = "deploy/k8s/overlays/production"
	var ops []struct {
		Op    string   `json:"op"`
		Path  string   `json:"path"`
		Value []string `json:"value"`
	}
	if err := yaml.UnmarshalStrict(readRepoFile(t, filepath.Join(dir, "topics-partitions.yaml")), &ops); err != nil {
		t.Fatal(err)
	}
	partitions := 0
	for _, op := range ops {
		if i := slices.Index(op.Value, "--partitions"); i >= 0 && i+1 < len(op.Value) {
			partitions, _ = strconv.Atoi(op.Value[i+1])
		}
	}
	if partitions == 0 {
		t.Fatal("topics-partitions.yaml sets no --partitions")
	}
	k := readKustomization(t, dir)
	for _, r := range k.Replicas {
		if r.Count > partitions {
			t.Errorf("%s: %d replicas over %d partitions", r.Name, r.Count, partitions)
		}
	}
	images := map[string]bool{}
	for _, img := range k.Images {
		images[img.Name] = img.NewTag != ""
	}
	for _, s := range append(Services(), "greenwave") {
		if !images["greenwave/"+s] {
			t.Errorf("production does not pin a tag for greenwave/%s", s)
		}
	}
}
