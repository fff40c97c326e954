package check

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml the way `docker compose --profile demo` does (every profile active,
// interpolation with an empty environment so the file's own defaults apply).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repoRoot, "docker-compose.yml")},
		cli.WithWorkingDirectory(repoRoot), cli.WithEnv(nil), cli.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

// oneShot reports whether a compose service is meant to run to completion (restart "no").
func oneShot(s types.ServiceConfig) bool { return s.Restart == "no" }

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	want := append([]string{"kafka", "topics", "prometheus", "grafana", "kafka-exporter", "replay"}, Services()...)
	for _, name := range want {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no %s service", name)
		}
	}
	if s, ok := p.Services["replay"]; ok && !slices.Equal(s.Profiles, []string{"demo"}) {
		t.Errorf("replay runs in profiles %v, want only demo", s.Profiles)
	}
}

func TestComposeHealthchecks(t *testing.T) {
	t.Parallel()
	for name, s := range loadCompose(t).Services {
		t.Run(name, func(t *testing.T) {
			if oneShot(s) {
				return
			}
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] != "CMD" {
				t.Fatalf("long-running service without an exec-form healthcheck (test: [CMD, ...]): %+v", s.HealthCheck)
			}
			if slices.Contains(Services(), name) {
				want := []string{"CMD", "/usr/local/bin/healthprobe", "http://127.0.0.1:8080/readyz"}
				if !slices.Equal(s.HealthCheck.Test, want) {
					t.Errorf("healthcheck %v, want %v (readiness, through the image's probe)", s.HealthCheck.Test, want)
				}
			}
		})
	}
}

func TestComposeEnvironmentIsKnown(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, name := range Services() {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			known := Names(serviceVars[name])
			for k := range s.Environment {
				if !known[k] {
					t.Errorf("sets %s, which %s does not read (see %s --help)", k, name, name)
				}
			}
			for _, k := range []string{"KAFKA_BROKERS", "TOPOLOGY_FILE", "GRPC_ADDR", "HTTP_ADDR"} {
				if s.Environment[k] == nil {
					t.Errorf("does not set %s", k)
				}
			}
			if v := s.Environment["HTTP_ADDR"]; v != nil && !strings.HasSuffix(*v, ":8080") {
				t.Errorf("HTTP_ADDR=%s, but the healthcheck and Prometheus use port 8080", *v)
			}
		})
	}
}

func TestComposePortsDoNotClash(t *testing.T) {
	t.Parallel()
	owner := map[string]string{}
	for name, s := range loadCompose(t).Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				continue
			}
			key := fmt.Sprintf("%s/%s", port.Published, port.Protocol)
			if other, ok := owner[key]; ok {
				t.Errorf("host port %s published by both %s and %s", key, other, name)
			}
			owner[key] = name
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q: bind published ports to 127.0.0.1", name, key, port.HostIP)
			}
		}
	}
}

func TestComposeDependsOn(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	want := map[string]map[string]string{
		"topics":         {"kafka": types.ServiceConditionHealthy},
		"kafka-exporter": {"kafka": types.ServiceConditionHealthy},
		"grafana":        {"prometheus": types.ServiceConditionHealthy},
		"replay":         {},
	}
	for _, s := range Services() {
		want[s] = map[string]string{"kafka": types.ServiceConditionHealthy, "topics": types.ServiceConditionCompletedSuccessfully}
		want["replay"][s] = types.ServiceConditionHealthy
	}
	for name, deps := range want {
		t.Run(name, func(t *testing.T) {
			s := p.Services[name]
			for dep, cond := range deps {
				got, ok := s.DependsOn[dep]
				if !ok {
					t.Errorf("does not depend on %s", dep)
					continue
				}
				if got.Condition != cond {
					t.Errorf("waits for %s to be %s, want %s", dep, got.Condition, cond)
				}
			}
		})
	}
	// Whatever others wait to complete must be a one-shot, or they would wait forever.
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully && !oneShot(p.Services[dep]) {
				t.Errorf("%s waits for %s to complete, but %s restarts", name, dep, dep)
			}
		}
	}
}

func TestComposeImagesAndConfig(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, name := range Services() {
		s := p.Services[name]
		if !strings.HasPrefix(s.Image, "greenwave/"+name+":") {
			t.Errorf("%s: image %q, want greenwave/%s:<tag>", name, s.Image, name)
		}
		if s.Build == nil || s.Build.Dockerfile != "services/Dockerfile" || s.Build.Context != repoRoot ||
			s.Build.Args["SERVICE"] == nil || *s.Build.Args["SERVICE"] != name {
			t.Errorf("%s: build %+v, want context ., services/Dockerfile and build argument SERVICE=%s", name, s.Build, name)
		}
		topo := false
		for _, v := range s.Volumes {
			if v.Source == filepath.Join(repoRoot, "config", "topology.yaml") && v.Target == "/etc/greenwave/topology.yaml" && v.ReadOnly {
				topo = true
			}
		}
		if !topo {
			t.Errorf("%s: the topology is not mounted read-only at /etc/greenwave/topology.yaml", name)
		}
	}
	for _, name := range []string{"topics", "replay"} {
		if s := p.Services[name]; !strings.HasPrefix(s.Image, "greenwave/greenwave:") {
			t.Errorf("%s: image %q, want the CLI image greenwave/greenwave:<tag>", name, s.Image)
		}
	}
	if cmd := p.Services["topics"].Command; len(cmd) < 2 || cmd[0] != "topics" || cmd[1] != "ensure" {
		t.Errorf("topics runs %v, want greenwave topics ensure", cmd)
	}
}
