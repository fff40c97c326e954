package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/greenwave-city/greenwave/cmd/greenwave/internal/stack"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// TestLeastPrivilege: on the SASL_SSL broker of `make test-kafka`, every service runs as its own SCRAM user
// holding only the ACLs of topics.ServiceAccess (docs/security-kafka.md), and readings still become plans: the
// table grants each service all it needs. The predictor's user then cannot write the plans topic, and the
// refusal names the ACLs to grant.
func TestLeastPrivilege(t *testing.T) {
	secrets := kafkatest.SecretsDir(t)
	parallelStack(t)
	p := startPipelineEnv(t, func(admin kafkaconn.Conn, names topics.Names, prefix string) map[string][]string {
		env := map[string][]string{}
		var acls []kafka.ACLEntry
		access := topics.ServiceAccess(names, func(service string) string { return prefix + "greenwave." + service })
		for _, a := range access {
			acls = append(acls, a.ACLs("User:"+a.Service)...)
			env[a.Service] = []string{kafkaconn.EnvSASLUsername + "=" + a.Service,
				kafkaconn.EnvSASLPasswordFile + "=" + filepath.Join(secrets, a.Service+".password")}
		}
		kafkatest.GrantACLs(t, admin, acls)
		for _, a := range access {
			waitAuthorized(t, kafkatest.ConnAs(t, a.Service), append(a.Read, a.Write...)...)
		}
		return env
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := newSender(ctx, t, p.stack.Addrs("collector").GRPC)
	dataEnd := p.feed(ctx, s, 90, nil)
	p.flush(s, dataEnd)
	if s.accepted == 0 {
		t.Fatal("collector accepted nothing")
	}
	if plans := p.waitPlans(ctx); len(plans) == 0 {
		t.Fatal("no plans from services running with their own ACLs only")
	}

	predictor := kafkatest.ConnAs(t, "predictor")
	prod := stream.NewProducer(predictor, stream.ProducerConfig{})
	defer prod.Close()
	err := prod.Write(ctx, stream.Output{Topic: p.names.Plans, Key: []byte("I-1"), Value: []byte("forged")})
	if !errors.Is(err, kafka.TopicAuthorizationFailed) {
		t.Fatalf("predictor writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", p.names.Plans, err)
	}
	if fatal := predictor.Classify(err); fatal == nil || !strings.Contains(fatal.Error(), `user "predictor" is not authorized for a topic (TOPIC_AUTHORIZATION_FAILED)`) {
		t.Fatalf("classified %v, want the user and TOPIC_AUTHORIZATION_FAILED named", fatal)
	}
}

// waitAuthorized waits until conn's user sees the metadata of every topic: the broker applies new ACLs
// through its metadata log, and a service refused at start stops for good.
func waitAuthorized(t *testing.T, conn kafkaconn.Conn, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		have, err := topics.Existing(ctx, conn.Client(10*time.Second), names)
		if err == nil && len(have) == len(dedup(names)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("user %s not authorized for %v after 30s: %v", conn.User, names, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func dedup(names []string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// TestServiceStopsOnBadCredentials: a service given a wrong password, a CA that did not sign the broker's
// certificate, or no ACL for its topics exits at start (never ready) with an error naming the variable to fix, instead of retrying.
func TestServiceStopsOnBadCredentials(t *testing.T) {
	secrets := kafkatest.SecretsDir(t)
	parallelStack(t)
	kafkaConn, names := kafkatest.Setup(t, partitions)
	prefix := strings.TrimSuffix(names.Readings, topics.DefaultNames("").Readings)
	wrong := filepath.Join(t.TempDir(), "wrong.password")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"wrong password", []string{kafkaconn.EnvSASLUsername + "=predictor", kafkaconn.EnvSASLPasswordFile + "=" + wrong},
			`SASL authentication failed for user "predictor" (SCRAM-SHA-512): check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD_FILE`},
		{"untrusted CA", []string{kafkaconn.EnvSASLUsername + "=predictor", kafkaconn.EnvSASLPasswordFile + "=" + filepath.Join(secrets, "predictor.password"),
			kafkaconn.EnvTLSCAFile + "=" + os.Getenv(kafkatest.EnvUntrustedCA)},
			"the brokers' TLS certificate is not signed by a trusted CA: check KAFKA_TLS_CA_FILE"},
		// The right credentials but no ACL on this test's topics: refused, and told which ACLs to grant.
		{"no ACL", []string{kafkaconn.EnvSASLUsername + "=predictor", kafkaconn.EnvSASLPasswordFile + "=" + filepath.Join(secrets, "predictor.password")},
			`user "predictor" is not authorized for a topic (TOPIC_AUTHORIZATION_FAILED): grant the ACLs docs/security-kafka.md lists`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			root, bins := serviceBinaries(t, "predictor")
			st, err := stack.Start(ctx, stack.Config{
				Brokers: kafkaConn.Brokers, TopicPrefix: prefix, TopologyFile: filepath.Join(root, "config", "topology.yaml"), BinDir: bins,
				Services: []string{"predictor"}, Dir: t.TempDir(), Stdout: testWriter{t}, LogFormat: "console", LogLevel: "warn",
				ExtraEnv: map[string][]string{"predictor": tc.env},
			})
			if err == nil {
				defer st.Stop() //nolint:errcheck // the test is failing already
				err = st.WaitReady(ctx)
			}
			// The service exits during start-up: never ready, with the setting to fix in its last words. It binds
			// its servers before it checks the topics (/readyz says "startup" meanwhile), so the exit may come
			// after its address file: then WaitReady reports it, and the words are in the exit's output tail.
			said := fmt.Sprint(err)
			if exit := (*stack.ExitError)(nil); errors.As(err, &exit) {
				said += "\n" + strings.Join(exit.Tail, "\n")
			}
			if err == nil || !strings.Contains(said, tc.want) {
				t.Fatalf("start: %s\nwant the predictor to exit at start saying %q", said, tc.want)
			}
		})
	}
}
