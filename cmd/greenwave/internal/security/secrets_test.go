package security

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/ops"
	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
)

// checkSecrets searches everything a run with credentials set exposes — the services' logs at debug level, their
// /metrics, every error message and response body the matrix received, the services' --help and --env-json,
// and the CLI's help and errors — for the tokens and the private keys.
func (f *fixture) checkSecrets(t *testing.T) {
	if !strings.Contains(f.logs.String(), "authentication failed") {
		t.Fatal("the services logged no failed authentication: the logs searched below would prove nothing")
	}
	exposed := map[string]string{"service logs": f.logs.String(), "error messages and bodies": strings.Join(f.messages, "\n")}
	client := f.httpClient(validToken)
	for _, svc := range stack.Services {
		resp, err := client.Get("https://" + f.stack.Addrs(svc).HTTP + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /metrics: %d %v", svc, resp.StatusCode, err)
		}
		if !strings.Contains(string(b), "gw-a") && svc == "collector" {
			t.Errorf("collector metrics name no gateway: the search proves nothing\n%s", b)
		}
		exposed[svc+" /metrics"] = string(b)
		// --help and --env-json run with the same environment, plus a token where a careless service might echo it.
		for _, flag := range []string{"--help", "--env-json"} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, filepath.Join(f.binDir, svc), flag)
			cmd.Env = append(append([]string{}, f.env...), ops.EnvToken+"="+f.secrets.gatewayA)
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", svc, flag, err, out)
			}
			exposed[svc+" "+flag] = string(out)
		}
	}
	t.Setenv(ops.EnvToken, f.secrets.gatewayA)
	for i, args := range [][]string{
		{"list", "--help"},
		{"list", "--addr", f.stack.Addrs("trainer").GRPC, "--timeout", "5s"},                      // plaintext to TLS: refused
		{"list", "--addr", f.stack.Addrs("trainer").GRPC, "--token", f.secrets.wrong[:15]},        // too short
		{"list", "--addr", f.stack.Addrs("trainer").GRPC, "--token", f.secrets.wrong + "\x01bad"}, // control character
	} {
		var out bytes.Buffer
		err := ops.Models(context.Background(), args, &out, &out)
		if err != nil {
			out.WriteString(err.Error())
		}
		exposed[fmt.Sprintf("greenwave models, case %d", i)] = out.String()
	}
	for where, text := range exposed {
		for what, secret := range f.secrets.all() {
			// A token's first 15 characters are searched too: the CLI was given that much as a too-short token.
			isToken := strings.Contains(what, "token") && !strings.HasPrefix(what, "SHA-256")
			if strings.Contains(text, secret) || (isToken && strings.Contains(text, secret[:15])) {
				t.Errorf("%s holds the %s", where, what)
			}
		}
	}
}
