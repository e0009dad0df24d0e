// Package repast is a Go client for a Repast (or Feast) feature server's HTTP JSON API:
// online retrieval, push, writes to the online store, materialization and health.
//
// A Client is safe for concurrent use by many goroutines and keeps its connections alive
// between calls; create one per server and share it.
//
//	c, err := repast.New("http://127.0.0.1:6566", repast.WithToken(os.Getenv("REPAST_TOKEN")))
//	resp, err := c.GetOnlineFeatures(ctx, repast.OnlineRequest{
//		Entities: []repast.Column{repast.Int64s("driver_id", 1001, 1002)},
//		Features: []string{"driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"},
//	})
//	rates, err := resp.Column("conv_rate").Float64s()
//
// Calls that fail with 503 (a backend of the server is down) or a connection error are
// retried with exponential backoff and full jitter; 4xx answers never are. Retrying a push
// or a write is safe only because the server's online writes are idempotent: a row whose
// event time is not newer than the stored one never overwrites it, so a write that did land
// before its answer was lost is a no-op when it is sent again.
package repast
