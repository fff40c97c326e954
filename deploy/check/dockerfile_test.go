package check

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	Cmd, Args string
}

// parseDockerfile splits a Dockerfile into instructions: comments dropped, backslash continuations joined.
// It is not BuildKit's parser, only enough to check what the images promise.
func parseDockerfile(data string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfiles checks the two image recipes: the CLI's and the one shared by the five services (build argument
// SERVICE), each a static binary on distroless, non-root, with the services probing their own /readyz.
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	images := []struct {
		file, bin, pkg string
		services       []string // the services the image can be built for; none for the CLI
	}{
		{file: "cmd/greenwave/Dockerfile", bin: "greenwave", pkg: "cmd/greenwave"},
		{file: "services/Dockerfile", bin: "service", pkg: "services/${SERVICE}", services: Services()},
	}
	buildFlags := regexp.MustCompile(`go build -trimpath [^&]*?-o /out/(\S+) \./(\S+)`)
	for _, img := range images {
		t.Run(img.bin, func(t *testing.T) {
			t.Parallel()
			ins := parseDockerfile(string(readRepoFile(t, img.file)))
			var froms []string
			var built = map[string]string{}
			got := map[string]string{}
			for _, in := range ins {
				switch in.Cmd {
				case "FROM":
					froms = append(froms, in.Args)
				case "RUN":
					for _, m := range buildFlags.FindAllStringSubmatch(in.Args, -1) {
						built[m[1]] = m[2]
					}
					if strings.HasPrefix(in.Args, "case ") {
						got["guard"] = in.Args
					}
				case "ENV":
					if strings.Contains(in.Args, "CGO_ENABLED=0") {
						got["cgo"] = "off"
					}
				}
				got[in.Cmd] = in.Args
			}
			if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:${GO_VERSION} AS build") ||
				froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
				t.Errorf("stages %q, want golang builder then gcr.io/distroless/static-debian12:nonroot", froms)
			}
			if got["cgo"] != "off" {
				t.Error("CGO_ENABLED=0 not set: the distroless static image has no libc")
			}
			if built[img.bin] != img.pkg {
				t.Errorf("builds %v, want /out/%s from ./%s with -trimpath", built, img.bin, img.pkg)
			}
			if got["USER"] != "nonroot:nonroot" {
				t.Errorf("USER %q, want nonroot:nonroot", got["USER"])
			}
			if want := `["/usr/local/bin/` + img.bin + `"]`; got["ENTRYPOINT"] != want {
				t.Errorf("ENTRYPOINT %s, want %s", got["ENTRYPOINT"], want)
			}
			if img.services == nil {
				if got["HEALTHCHECK"] != "NONE" {
					t.Errorf("the CLI image runs one-shot commands: HEALTHCHECK %q, want NONE", got["HEALTHCHECK"])
				}
				return
			}
			// The guard names exactly the services there are, so a new service is not silently unbuildable.
			guarded := regexp.MustCompile(`case "\$\{SERVICE\}" in ([a-z|]+)\)`).FindStringSubmatch(got["guard"])
			if guarded == nil || !slices.Equal(slices.Sorted(slices.Values(strings.Split(guarded[1], "|"))), slices.Sorted(slices.Values(img.services))) {
				t.Errorf("SERVICE guard %q, want exactly %v", got["guard"], img.services)
			}
			if built["healthprobe"] != "deploy/check/cmd/healthprobe" {
				t.Error("the health probe is not built into the image")
			}
			if !strings.HasSuffix(got["HEALTHCHECK"], `CMD ["/usr/local/bin/healthprobe", "http://127.0.0.1:8080/readyz"]`) {
				t.Errorf("HEALTHCHECK %q, want the probe of /readyz", got["HEALTHCHECK"])
			}
			for _, env := range []string{"GRPC_ADDR=0.0.0.0:9090", "HTTP_ADDR=0.0.0.0:8080", "TOPOLOGY_FILE=/etc/greenwave/topology.yaml"} {
				if !strings.Contains(got["ENV"], env) {
					t.Errorf("the image does not set %s", env)
				}
				name, _, _ := strings.Cut(env, "=")
				for _, svc := range img.services {
					if !Names(serviceVars[svc])[name] {
						t.Errorf("the image sets %s, which %s does not read", name, svc)
					}
				}
			}
		})
	}
}
