package repast_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	repast "github.com/repast-dev/repast/clients/go"
)

var scalarNames = []string{"i32", "i64", "f32", "f64", "str", "byt", "flag", "ts"}

func allTypeFeatures(view string) []string {
	var out []string
	for _, n := range scalarNames {
		out = append(out, view+":"+n)
	}
	for _, n := range scalarNames {
		out = append(out, view+":"+n+"_list")
	}
	return out
}

func request(entities map[string]any, features []string, service string, full bool) map[string]any {
	r := map[string]any{"entities": entities, "full_feature_names": full}
	if service != "" {
		r["feature_service"] = service
	} else {
		r["features"] = features
	}
	return r
}

// Every value type, nulls and a missing entity (1004), as features, with full feature
// names and through a feature service: the client's typed columns equal the SDK's.
func TestGetOnlineFeaturesEqualsSDK(t *testing.T) {
	c := newClient(t)
	ids := []int64{1001, 1002, 1003, 1004}
	features := allTypeFeatures("all_types")
	cases := []struct {
		name    string
		full    bool
		service string
	}{{"features", false, ""}, {"full names", true, ""}, {"feature service", false, "all_types_service"}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.GetOnlineFeatures(context.Background(), repast.OnlineRequest{
				Entities:         []repast.Column{repast.Int64s("driver_id", ids...)},
				Features:         features,
				FeatureService:   tc.service,
				FullFeatureNames: tc.full,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := sdkExpect(t, request(map[string]any{"driver_id": ids}, features, tc.service, tc.full))
			assertEqualsSDK(t, resp, want)
			if len(resp.Columns) != 17 || resp.Rows() != 4 {
				t.Fatalf("got %d columns of %d rows, want 17 of 4", len(resp.Columns), resp.Rows())
			}
		})
	}
}

// Spot checks of the decoded values themselves, so a bug shared by the SDK and the server
// would still show.
func TestTypedValues(t *testing.T) {
	c := newClient(t)
	resp, err := c.GetOnlineFeatures(context.Background(), repast.OnlineRequest{
		Entities: []repast.Column{repast.Int64s("driver_id", 1001, 1002, 1003, 1004)},
		Features: allTypeFeatures("all_types"),
	})
	if err != nil {
		t.Fatal(err)
	}
	i64, _ := resp.Column("i64").Int64s()
	if i64[0] != 1<<53+1 || i64[2] != math.MinInt64 {
		t.Errorf("i64 = %v", i64)
	}
	f32, _ := resp.Column("f32").Float32s()
	if f32[0] != 0.2 {
		t.Errorf("f32[0] = %v, want 0.2 as a float32", f32[0])
	}
	f64, _ := resp.Column("f64").Float64s()
	if f64[0] != 1.0/3.0 || !math.IsInf(f64[2], -1) {
		t.Errorf("f64 = %v", f64)
	}
	s, _ := resp.Column("str").Strings()
	if s[0] != "héllo \"wörld\"\n" || s[2] != "" {
		t.Errorf("str = %q", s)
	}
	b, _ := resp.Column("byt").Bytes()
	if string(b[0]) != "\x00\x01\xfe\xff" {
		t.Errorf("byt = %q", b)
	}
	ts, _ := resp.Column("ts").Times()
	if !ts[0].Equal(time.Date(2023, 6, 1, 8, 30, 0, 0, time.UTC)) {
		t.Errorf("ts = %v", ts)
	}
	col := resp.Column("i32_list")
	if !col.IsNull(1) || col.IsNull(2) {
		t.Errorf("i32_list nulls: row 1 %v (want null), row 2 %v (an empty list)", col.IsNull(1), col.IsNull(2))
	}
	want := []repast.Status{repast.StatusPresent, repast.StatusPresent, repast.StatusPresent, repast.StatusNotFound}
	if fmt.Sprint(col.Statuses) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", col.Statuses, want)
	}
	if et := col.EventTimestamps[2]; !et.Equal(time.Date(2024, 1, 1, 12, 30, 15, 250_000_000, time.UTC)) {
		t.Errorf("event time = %v", et)
	}
	if _, err := resp.Column("str").Int64s(); err == nil || !strings.Contains(err.Error(), `column "str" row 0`) {
		t.Errorf("a string column read as int64: err = %v", err)
	}
}

// Columns come back in request order, across views, for rows in request order with
// duplicates and a missing entity.
func TestRequestOrder(t *testing.T) {
	c := newClient(t)
	features := []string{"wide:w07", "all_types:str", "wide:w01", "all_types:i64_list", "wide:w49", "wide:w00"}
	ids := []int64{1003, 1050, 9999, 1001, 1003}
	resp, err := c.GetOnlineFeatures(context.Background(), repast.OnlineRequest{
		Entities: []repast.Column{repast.Int64s("driver_id", ids...)},
		Features: features,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"driver_id", "w07", "str", "w01", "i64_list", "w49", "w00"}
	if fmt.Sprint(resp.FeatureNames) != fmt.Sprint(want) {
		t.Fatalf("names %v, want %v", resp.FeatureNames, want)
	}
	assertEqualsSDK(t, resp, sdkExpect(t, request(map[string]any{"driver_id": ids}, features, "", false)))
	w00, _ := resp.Column("w00").Int64s()
	if w00[1] != 1050*1000 || w00[3] != 1001*1000 {
		t.Errorf("w00 = %v", w00)
	}
}

func pushRow(id int64, at time.Time, i64 int64) []repast.Column {
	t1 := time.Date(2023, 6, 1, 8, 30, 0, 0, time.UTC)
	return []repast.Column{
		repast.Int64s("driver_id", id),
		repast.Times("event_timestamp", at),
		repast.Times("created", at),
		repast.Int32s("i32", -5),
		repast.Int64s("i64", i64),
		repast.Float32s("f32", 1.5),
		repast.Float64s("f64", math.Inf(1)),
		repast.Strings("str", "ünï \"q\" \\ \t"),
		repast.Bytes("byt", []byte("plain")),
		repast.Bools("flag", false),
		repast.Times("ts", t1),
		repast.Int32Lists("i32_list", []int32{math.MaxInt32, math.MinInt32}),
		repast.Int64Lists("i64_list", []int64{}),
		repast.Float32Lists("f32_list", []float32{0.1, -0}),
		repast.Float64Lists("f64_list", []float64{math.MaxFloat64, 2}),
		repast.StringLists("str_list", []string{"x", ""}),
		repast.BytesLists("byt_list", [][]byte{[]byte("a"), {}}),
		repast.BoolLists("flag_list", []bool{true}),
		repast.TimeLists("ts_list", []time.Time{t1, time.Unix(0, 0)}),
	}
}

// A push of every type reads back as pushed, equal to the SDK's read; a second push of the
// same row (a retried push) and a push of an older row change nothing.
func TestPushEveryTypeAndNewerWins(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 10, 0, 0, 123456000, time.UTC)
	if err := c.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: pushRow(3001, at, 42)}); err != nil {
		t.Fatal(err)
	}
	// Nulls in every feature column but i64 (a row of nulls only is skipped, as in Feast).
	nulls := pushRow(3002, at, 0)
	for i := 3; i < len(nulls); i++ {
		if nulls[i].Name() != "i64" {
			nulls[i] = nulls[i].Null(0)
		}
	}
	if err := c.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: nulls}); err != nil {
		t.Fatal(err)
	}
	if err := c.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: pushRow(3001, at, 42)}); err != nil {
		t.Fatal(err)
	}
	older := at.Add(-time.Hour)
	if err := c.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: pushRow(3001, older, 7)}); err != nil {
		t.Fatal(err)
	}
	features := allTypeFeatures("pushed")
	resp, err := c.GetOnlineFeatures(ctx, repast.OnlineRequest{
		Entities: []repast.Column{repast.Int64s("driver_id", 3001, 3002)},
		Features: features,
	})
	if err != nil {
		t.Fatal(err)
	}
	assertEqualsSDK(t, resp, sdkExpect(t, request(map[string]any{"driver_id": []int64{3001, 3002}}, features, "", false)))
	i64, _ := resp.Column("i64").Int64s()
	if i64[0] != 42 {
		t.Errorf("i64 = %d after an older push, want 42 (newer wins)", i64[0])
	}
	if et := resp.Column("i64").EventTimestamps[0]; !et.Equal(at) {
		t.Errorf("event time %v, want %v", et, at)
	}
	str, _ := resp.Column("str").Strings()
	f64, _ := resp.Column("f64").Float64s()
	byt, _ := resp.Column("byt").Bytes()
	f64l, _ := resp.Column("f64_list").Float64Lists()
	if str[0] != "ünï \"q\" \\ \t" || !math.IsInf(f64[0], 1) || string(byt[0]) != "plain" || f64l[0][0] != math.MaxFloat64 {
		t.Errorf("read back str=%q f64=%v byt=%q f64_list=%v", str[0], f64[0], byt[0], f64l[0])
	}
	for _, col := range resp.Columns[1:] {
		if col.Name != "i64" && (!col.IsNull(1) || col.Statuses[1] != repast.StatusPresent) {
			t.Errorf("column %q row 1: null %v status %v, want a PRESENT null", col.Name, col.IsNull(1), col.Statuses[1])
		}
	}
}

// String join keys, written with WriteToOnlineStore.
func TestWriteToOnlineStoreStringKeys(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	at := time.Date(2024, 5, 5, 5, 5, 5, 0, time.UTC)
	err := c.WriteToOnlineStore(ctx, "user_stats",
		repast.Strings("user_id", "alice", "bob"),
		repast.Times("event_timestamp", at, at),
		repast.Float64s("score", 0.75, -1e-9),
		repast.Int64s("visits", 3, 0).Null(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	entities := []repast.Column{repast.Strings("user_id", "bob", "carol", "alice")}
	features := []string{"user_stats:score", "user_stats:visits"}
	resp, err := c.GetOnlineFeatures(ctx, repast.OnlineRequest{Entities: entities, Features: features, FullFeatureNames: true})
	if err != nil {
		t.Fatal(err)
	}
	assertEqualsSDK(t, resp, sdkExpect(t, request(map[string]any{"user_id": []string{"bob", "carol", "alice"}}, features, "", true)))
	score, _ := resp.Column("user_stats__score").Float64s()
	if score[0] != -1e-9 || score[2] != 0.75 || resp.Column("user_stats__score").Statuses[1] != repast.StatusNotFound {
		t.Errorf("scores %v statuses %v", score, resp.Column("user_stats__score").Statuses)
	}
}

func TestMaterializeIncrementalAndAsync(t *testing.T) {
	c := newClient(t)
	ctx := context.Background()
	if err := c.MaterializeIncremental(ctx, time.Now(), "wide"); err != nil {
		t.Fatal(err)
	}
	err := c.Materialize(ctx, repast.MaterializeRequest{
		Start: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		FeatureViews: []string{"wide"}, Async: true, Force: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.MaterializeIncremental(ctx, time.Now(), "nope")
	if e := assertError(t, err, 404, "FeatureViewNotFoundError", "nope"); e.FeastClass != "FeatureViewNotFoundException" {
		t.Errorf("FeastClass = %q, want Feast's FeatureViewNotFoundException", e.FeastClass)
	}
	err = c.Materialize(ctx, repast.MaterializeRequest{Start: time.Now(), End: time.Now().Add(-time.Hour)})
	assertError(t, err, 400, "BadRequest", "must be before end_ts")
}

func assertError(t *testing.T, err error, status int, kind, detail string) *repast.Error {
	t.Helper()
	var e *repast.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want a *repast.Error", err, err)
	}
	if e.StatusCode != status || e.Kind != kind || !strings.Contains(e.Detail, detail) {
		t.Fatalf("got %d %q %q, want %d %q with %q", e.StatusCode, e.Kind, e.Detail, status, kind, detail)
	}
	if e.Temporary() {
		t.Errorf("a %d is not temporary", status)
	}
	return e
}

// errorCount is the server's repast_errors counter for one endpoint and kind: how many
// answers of that kind it sent, so a test can tell how many attempts reached it.
func errorCount(t *testing.T, endpoint, kind string) float64 {
	t.Helper()
	resp, err := http.Get(env.server.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^repast_errors_total\{([^}]*)\} (\S+)$`)
	total := 0.0
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		if strings.Contains(m[1], `endpoint="`+endpoint+`"`) && strings.Contains(m[1], `error="`+kind+`"`) {
			v, _ := strconv.ParseFloat(m[2], 64)
			total += v
		}
	}
	return total
}

// Bad requests fail with the server's status, kind and message, and are never retried.
func TestBadRequestsAreTypedAndNotRetried(t *testing.T) {
	var retries atomic.Int32
	c := newClient(t, repast.WithRetry(repast.RetryPolicy{MaxRetries: 5, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}),
		repast.WithRetryHook(func(repast.RetryEvent) { retries.Add(1) }))
	ctx := context.Background()
	ids := []repast.Column{repast.Int64s("driver_id", 1001)}

	before := errorCount(t, "/get-online-features", "FeatureNotFoundError")
	_, err := c.GetOnlineFeatures(ctx, repast.OnlineRequest{Entities: ids, Features: []string{"all_types:nope"}})
	e := assertError(t, err, 404, "FeatureNotFoundError", "feature view 'all_types' has no feature 'nope'")
	if !strings.Contains(e.Error(), "POST /get-online-features: 404 FeatureNotFoundError") {
		t.Errorf("message %q", e.Error())
	}
	if after := errorCount(t, "/get-online-features", "FeatureNotFoundError"); after != before+1 {
		t.Errorf("the server saw %v failed attempts, want 1", after-before)
	}

	_, err = c.GetOnlineFeatures(ctx, repast.OnlineRequest{Entities: ids, FeatureService: "nope"})
	assertError(t, err, 404, "FeatureServiceNotFoundError", "feature service 'nope' does not exist")
	_, err = c.GetOnlineFeatures(ctx, repast.OnlineRequest{Entities: ids})
	assertError(t, err, 400, "BadRequest", "No features specified for retrieval")
	err = c.Push(ctx, repast.PushRequest{Source: "nope", Columns: ids})
	assertError(t, err, 422, "PushSourceNotFoundError", "push source 'nope' does not exist")
	err = c.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: pushRow(3003, time.Now(), 1)[1:]})
	assertError(t, err, 400, "MissingColumnError", "for feature view 'pushed' has no column 'driver_id'")
	err = c.WriteToOnlineStore(ctx, "user_stats", repast.Strings("user_id", "x"), repast.Strings("event_timestamp", "yesterday"),
		repast.Float64s("score", 1), repast.Int64s("visits", 1))
	assertError(t, err, 400, "BadRequest", "event_timestamp")

	// Caught before sending: columns of different lengths, bytes the JSON push cannot carry.
	_, err = c.GetOnlineFeatures(ctx, repast.OnlineRequest{
		Entities: []repast.Column{repast.Int64s("driver_id", 1, 2), repast.Strings("user_id", "a")},
		Features: []string{"all_types:i32"},
	})
	if err == nil || !strings.Contains(err.Error(), `column "user_id" has 1 rows, column "driver_id" has 2`) {
		t.Errorf("unequal columns: err = %v", err)
	}
	err = c.Push(ctx, repast.PushRequest{Source: "all_types_push", Columns: []repast.Column{repast.Bytes("byt", []byte{0xff})}})
	if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("invalid UTF-8 bytes: err = %v", err)
	}
	if n := retries.Load(); n != 0 {
		t.Errorf("%d retries of 4xx answers, want none", n)
	}
}

func TestBearerToken(t *testing.T) {
	ctx := context.Background()
	req := repast.OnlineRequest{Entities: []repast.Column{repast.Int64s("driver_id", 1001)}, Features: []string{"all_types:i64"}}
	for _, token := range []string{"", "wrong"} {
		c, _ := repast.New(env.authServer.url, repast.WithToken(token))
		_, err := c.GetOnlineFeatures(ctx, req)
		detail := map[string]string{"": "missing `Authorization: Bearer <token>` header", "wrong": "invalid bearer token"}[token]
		assertError(t, err, 401, "Unauthorized", detail)
		if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
			t.Errorf("/health needs no token: %v %v", h, err)
		}
	}
	c, _ := repast.New(env.authServer.url, repast.WithToken(authToken))
	resp, err := c.GetOnlineFeatures(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := resp.Column("i64").Int64s(); v[0] != 1<<53+1 {
		t.Errorf("i64 = %v", v)
	}
}

func TestHealth(t *testing.T) {
	h, err := newClient(t).Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || h.Project != "clients" || len(h.Problems) != 0 || h.RegistryVersion == "" {
		t.Errorf("health = %+v", h)
	}
}

// A server that is not there: every attempt is made, then a *ConnectionError.
func TestConnectionErrorsAreRetried(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	var events []repast.RetryEvent
	var mu sync.Mutex
	c, _ := repast.New("http://127.0.0.1:"+strconv.Itoa(port),
		repast.WithRetry(repast.RetryPolicy{MaxRetries: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}),
		repast.WithRetryHook(func(e repast.RetryEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }))
	err = c.Push(context.Background(), repast.PushRequest{Source: "s", Columns: []repast.Column{repast.Int64s("a", 1)}})
	var ce *repast.ConnectionError
	if !errors.As(err, &ce) || ce.Attempts != 4 || ce.Path != "/push" {
		t.Fatalf("err = %v, want a ConnectionError after 4 attempts", err)
	}
	if len(events) != 3 || events[2].Attempt != 3 || events[0].Wait > time.Millisecond {
		t.Errorf("retry events %+v", events)
	}
}

func TestDeadlineAndCancel(t *testing.T) {
	port, _ := freePort()
	slow := repast.RetryPolicy{MaxRetries: 100, InitialBackoff: time.Second, MaxBackoff: time.Second}
	c, _ := repast.New("http://127.0.0.1:"+strconv.Itoa(port), repast.WithRetry(slow), repast.WithTimeout(200*time.Millisecond))
	start := time.Now()
	_, err := c.Health(context.Background())
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	_, err = c.GetOnlineFeatures(context.Background(), repast.OnlineRequest{Entities: []repast.Column{repast.Int64s("driver_id", 1)}, Features: []string{"a:b"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the 200 ms deadline", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = c.GetOnlineFeatures(ctx, repast.OnlineRequest{Entities: []repast.Column{repast.Int64s("driver_id", 1)}, Features: []string{"a:b"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("the calls took %v; deadlines and cancellation did not stop the retries", elapsed)
	}
}

// 32 goroutines share one client; every answer is the right one for its request.
func TestConcurrentCallers(t *testing.T) {
	c := newClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				id := int64(1001 + (g*20+i)%100)
				resp, err := c.GetOnlineFeatures(context.Background(), repast.OnlineRequest{
					Entities: []repast.Column{repast.Int64s("driver_id", id)},
					Features: []string{"wide:w00", "wide:w03"},
				})
				if err != nil {
					errs <- err
					return
				}
				w00, _ := resp.Column("w00").Int64s()
				w03, _ := resp.Column("w03").Strings()
				if w00[0] != id*1000 || w03[0] != fmt.Sprintf("value-3-%d", id) {
					errs <- fmt.Errorf("driver %d: w00=%d w03=%q", id, w00[0], w03[0])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
