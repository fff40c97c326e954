package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
)

// TestRunOnExternalBrokers: `greenwave dev --brokers` on the real broker of `make test-kafka` (with its TLS and
// SASL settings from the environment) refuses to start while the topics are missing, naming them; with
// --create-topics it creates them, runs the five services there and counts the plans they issue. Skipped
// without KAFKA_BROKERS: the embedded broker is covered by the package main tests.
func TestRunOnExternalBrokers(t *testing.T) {
	if !kafkatest.Real() {
		t.Skip("needs a real Kafka cluster: KAFKA_BROKERS (make test-kafka)")
	}
	conn := kafkatest.Conn(t)
	prefix := kafkatest.Prefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	options := func(create bool) Options {
		return Options{Brokers: conn.Brokers, CreateTopics: create, TopicPrefix: prefix, Sample: true, Backfill: 3 * time.Hour,
			Seed: 1, For: 20 * time.Second, JSON: true, LogFile: filepath.Join(t.TempDir(), "dev.log"), LogLevel: "warn",
			ReadyTimeout: 2 * time.Minute}
	}

	var stdout, stderr bytes.Buffer
	err := Run(ctx, options(false), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "topics missing") || !strings.Contains(err.Error(), prefix+"greenwave.signal-plans") ||
		!strings.Contains(err.Error(), "--create-topics") {
		t.Fatalf("dev without topics: %v, want the missing topics named and --create-topics suggested", err)
	}

	stdout.Reset()
	stderr.Reset()
	if err := Run(ctx, options(true), &stdout, &stderr); err != nil {
		t.Fatalf("dev --brokers --create-topics: %v\nstderr:\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var final struct {
		Event            string         `json:"event"`
		Final            bool           `json:"final"`
		ReadingsAccepted int            `json:"readings_accepted"`
		Plans            map[string]int `json:"plans"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil || final.Event != "summary" || !final.Final {
		t.Fatalf("last line %q is no final summary: %v", lines[len(lines)-1], err)
	}
	plans := 0
	for _, n := range final.Plans {
		plans += n
	}
	if final.ReadingsAccepted == 0 || plans == 0 {
		t.Fatalf("final summary %+v: want readings accepted and plans issued on the external cluster\nstderr:\n%s", final, stderr.String())
	}
}
