package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/greenwave-city/greenwave/pkg/app"
	"github.com/greenwave-city/greenwave/pkg/kafkaconn"
	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/topics"
)

// TestCheckTopicsWaitsForTheBroker: a service started while the broker is down waits for it at the topic check,
// marked "startup" in the Health (readiness false), rather than failing; once the broker is back the check
// passes and readiness with it.
func TestCheckTopicsWaitsForTheBroker(t *testing.T) {
	t.Parallel()
	conn, names, outage := kafkatest.SetupRestartable(t, 2)
	health := kafkaconn.NewHealth(prometheus.NewRegistry())
	conn = conn.WithHealth(health)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	outage.Stop()
	type result struct {
		counts map[string]int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		counts, err := app.CheckTopics(ctx, conn, names, names.Readings, names.Features)
		done <- result{counts, err}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for health.ReadyCheck() == nil {
		select {
		case r := <-done:
			t.Fatalf("CheckTopics returned with the broker down: %v, %v", r.counts, r.err)
		case <-ctx.Done():
			t.Fatal("the topic check never reported the broker unreachable")
		case <-tick.C:
		}
	}
	if err := health.ReadyCheck(); !strings.Contains(err.Error(), "startup") {
		t.Errorf("readiness = %v, want it to name startup", err)
	}
	if err := outage.Start(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.counts[names.Readings] != 2 {
		t.Fatalf("CheckTopics = %v, %v; want 2 partitions", r.counts, r.err)
	}
	if err := health.ReadyCheck(); err != nil {
		t.Errorf("readiness after the broker came back: %v", err)
	}
}

// TestCheckTopicsMissingTopicIsNotABrokerOutage: a missing topic on a reachable broker is still an error (after
// the 60 s wait for a topic initialisation), not a wait forever; here the context bounds it.
func TestCheckTopicsMissingTopicIsNotABrokerOutage(t *testing.T) {
	t.Parallel()
	conn, names, _ := kafkatest.SetupRestartable(t, 1)
	health := kafkaconn.NewHealth(prometheus.NewRegistry())
	conn = conn.WithHealth(health)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := app.CheckTopics(ctx, conn, names, "no-such-topic")
	if err == nil {
		t.Fatal("CheckTopics passed without the topic")
	}
	if health.ReadyCheck() != nil {
		t.Errorf("a missing topic was reported as the broker unreachable: %v", health.ReadyCheck())
	}
}

// TestCheckTopicsFailsFastOnBadCredentials: a wrong password is not an outage: the check fails at once with the
// setting to fix instead of waiting for the broker (what TestServiceStopsOnBadCredentials checks end to end on the
// real SASL_SSL broker).
func TestCheckTopicsFailsFastOnBadCredentials(t *testing.T) {
	t.Parallel()
	cluster, addrs, err := kafkatest.NewCluster(kfake.EnableSASL(), kfake.Superuser(kafkaconn.ScramSHA512, "admin", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	mech, err := kafkaconn.Mechanism(kafkaconn.ScramSHA512, "admin", "wrong")
	if err != nil {
		t.Fatal(err)
	}
	conn := kafkaconn.New(addrs, nil, mech, "admin").WithHealth(kafkaconn.NewHealth(prometheus.NewRegistry()))
	defer conn.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = app.CheckTopics(ctx, conn, topics.DefaultNames(""), "greenwave.readings.raw")
	if err == nil || ctx.Err() != nil || !kafkaconn.IsSecurity(err) || !strings.Contains(err.Error(), "SASL authentication failed") {
		t.Fatalf("CheckTopics = %v (ctx %v), want the SASL failure at once", err, ctx.Err())
	}
}
