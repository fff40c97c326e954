package dev

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/greenwave-city/greenwave/pkg/kafkatest"
	"github.com/greenwave-city/greenwave/pkg/stream"
	greenwavev1 "github.com/greenwave-city/greenwave/proto/greenwave/v1"
)

// TestPlanCounterCountsTheTopic: `greenwave dev`'s plan counts are the plans on the plans topic, every one once
// and by reason, including several plans of one intersection written together; catchUp returns only once
// every plan on the topic at the time of the call is counted.
func TestPlanCounterCountsTheTopic(t *testing.T) {
	t.Parallel()
	kafkaConn, names := kafkatest.Setup(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prod := stream.NewProducer(kafkaConn, stream.ProducerConfig{})
	defer prod.Close()
	reasons := []greenwavev1.PlanReason{greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE, greenwavev1.PlanReason_PLAN_REASON_PREDICTIVE,
		greenwavev1.PlanReason_PLAN_REASON_TIME_OF_DAY, greenwavev1.PlanReason_PLAN_REASON_FIXED_TIME}
	write := func(from, n int) {
		var outs []stream.Output
		for i := from; i < from+n; i++ {
			id := fmt.Sprint("I-", i%5)
			b, err := proto.Marshal(&greenwavev1.SignalPlan{PlanId: fmt.Sprint(id, "/", i), IntersectionId: id, Reason: reasons[i%len(reasons)]})
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, stream.Output{Topic: names.Plans, Key: []byte(id), Value: b})
		}
		if err := prod.Write(ctx, outs...); err != nil {
			t.Fatal(err)
		}
	}
	write(0, 100) // before counting starts: counted too, the topic is read from its start
	st := newStats()
	c, err := newPlanCounter(ctx, kafkaConn, names.Plans, st, false)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.run(runCtx) }()
	check := func(want map[string]int) {
		t.Helper()
		if err := c.catchUp(ctx); err != nil {
			t.Fatal(err)
		}
		if got := st.snapshot(0).Plans; !maps.Equal(got, want) {
			t.Fatalf("plan counts %v, want %v", got, want)
		}
	}
	check(map[string]int{"predictive": 50, "time_of_day": 25, "fixed_time": 25})
	write(100, 40)
	if err := prod.Write(ctx, stream.Output{Topic: names.Plans, Key: []byte("I-0"), Value: []byte{0xff}}); err != nil {
		t.Fatal(err)
	}
	check(map[string]int{"predictive": 70, "time_of_day": 35, "fixed_time": 35, "unspecified": 1})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	closeDefaultTransport()
}
