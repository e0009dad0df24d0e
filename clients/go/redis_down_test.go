package repast_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	repast "github.com/repast-dev/repast/clients/go"
)

// Redis stops: reads and health answer 503 (typed, temporary); a retrying call that spans
// the restart succeeds; after a materialization the values equal the SDK's again.
func TestRedisDownThen503ThenRecovery(t *testing.T) {
	ctx := context.Background()
	req := repast.OnlineRequest{Entities: []repast.Column{repast.Int64s("driver_id", 1001, 1004)}, Features: allTypeFeatures("all_types")}
	env.redis.stop()
	restarted := false
	defer func() {
		if !restarted {
			_ = env.redis.start()
			_ = materializeAll(ctx)
		}
	}()

	noRetry := newClient(t, repast.WithRetry(repast.RetryPolicy{}))
	_, err := noRetry.GetOnlineFeatures(ctx, req)
	var e *repast.Error
	if !errors.As(err, &e) || e.StatusCode != 503 || !e.Temporary() || e.Kind == "" || e.Detail == "" {
		t.Fatalf("err = %#v, want a temporary 503 with the server's error and detail", err)
	}
	t.Logf("while Redis is down: %v", e)
	h, err := noRetry.Health(ctx)
	if repast.StatusCode(err) != 503 || h == nil || h.Status != "unhealthy" || len(h.Problems) == 0 {
		t.Fatalf("health while Redis is down: %+v, %v", h, err)
	}
	err = noRetry.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: pushRow(3100, time.Now(), 1)})
	if repast.StatusCode(err) != 503 {
		t.Fatalf("push while Redis is down: %v, want 503", err)
	}

	// Redis comes back after the first retry; the call that started while it was down succeeds.
	var retries atomic.Int32
	restart := make(chan error, 1)
	retrying := newClient(t,
		repast.WithRetry(repast.RetryPolicy{MaxRetries: 40, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 250 * time.Millisecond}),
		repast.WithRetryHook(func(ev repast.RetryEvent) {
			if retries.Add(1) == 1 {
				go func() { restart <- env.redis.start() }()
			}
		}),
		repast.WithTimeout(30*time.Second))
	resp, err := retrying.GetOnlineFeatures(ctx, req)
	if err != nil {
		t.Fatalf("after Redis restarted: %v", err)
	}
	if err := <-restart; err != nil {
		t.Fatal(err)
	}
	restarted = true
	if retries.Load() == 0 {
		t.Fatal("no retry although Redis was down when the call started")
	}
	// Redis restarted empty (no persistence): not found until materialized again.
	if s := resp.Column("i64").Statuses[0]; s != repast.StatusNotFound {
		t.Errorf("status %v from an empty Redis", s)
	}
	if err := materializeAll(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err = noRetry.GetOnlineFeatures(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	assertEqualsSDK(t, resp, sdkExpect(t, request(map[string]any{"driver_id": []int64{1001, 1004}}, allTypeFeatures("all_types"), "", false)))
	if h, err := noRetry.Health(ctx); err != nil || h.Status != "ok" {
		t.Errorf("health after recovery: %+v, %v", h, err)
	}
}
