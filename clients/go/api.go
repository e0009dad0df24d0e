package repast

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// OnlineRequest is a GetOnlineFeatures call: entity rows as columns (all of one length),
// and either Features ("view:feature" references) or a FeatureService.
type OnlineRequest struct {
	Entities         []Column
	Features         []string
	FeatureService   string // wins over Features when set
	FullFeatureNames bool   // name columns "view__feature" instead of "feature"
}

// GetOnlineFeatures reads the latest feature values of each entity row.
func (c *Client) GetOnlineFeatures(ctx context.Context, req OnlineRequest) (*OnlineResponse, error) {
	buf := bufPool.Get().(*[]byte)
	body := append((*buf)[:0], `{"entities":`...)
	body, err := encodeColumns(body, "entities", req.Entities)
	if err != nil {
		return nil, err
	}
	if req.FeatureService != "" {
		body = append(body, `,"feature_service":`...)
		body = appendJSONString(body, req.FeatureService)
	} else {
		body = append(body, `,"features":[`...)
		for i, f := range req.Features {
			if i > 0 {
				body = append(body, ',')
			}
			body = appendJSONString(body, f)
		}
		body = append(body, ']')
	}
	if req.FullFeatureNames {
		body = append(body, `,"full_feature_names":true`...)
	}
	body = append(body, '}')
	_, out, err := c.call(ctx, http.MethodPost, "/get-online-features", body)
	if err != nil {
		// Not back to the pool: after an early answer (413, a reset) the transport may still
		// be reading the body.
		return nil, err
	}
	*buf = body
	bufPool.Put(buf)
	resp, err := decodeOnlineResponse(out)
	if err != nil {
		return nil, &DecodeError{Path: "/get-online-features", Err: err}
	}
	return resp, nil
}

// PushTarget says which stores a push writes.
type PushTarget string

const (
	PushOnline           PushTarget = "online"
	PushOffline          PushTarget = "offline"
	PushOnlineAndOffline PushTarget = "online_and_offline"
)

// PushRequest is a Push call: rows (as columns) for every feature view fed by the push
// source Source. The rows need every join key, every feature of the views, the batch
// source's timestamp field and its created-timestamp column, if it has one.
type PushRequest struct {
	Source  string
	Columns []Column
	To      PushTarget // default PushOnline
}

// Push writes rows through a push source. Rows whose event time is not newer than the
// stored one are skipped, which is also what makes retrying a push safe.
func (c *Client) Push(ctx context.Context, req PushRequest) error {
	to := req.To
	if to == "" {
		to = PushOnline
	}
	body, err := writeBody("push_source_name", req.Source, req.Columns, func(b []byte) []byte {
		b = append(b, `,"to":`...)
		return appendJSONString(b, string(to))
	})
	if err != nil {
		return err
	}
	_, _, err = c.call(ctx, http.MethodPost, "/push", body)
	return err
}

// WriteToOnlineStore writes rows (as columns) into one feature view's online store, with
// the same columns and newer-wins rule as Push.
func (c *Client) WriteToOnlineStore(ctx context.Context, featureView string, columns ...Column) error {
	body, err := writeBody("feature_view_name", featureView, columns, nil)
	if err != nil {
		return err
	}
	_, _, err = c.call(ctx, http.MethodPost, "/write-to-online-store", body)
	return err
}

func writeBody(nameField, name string, columns []Column, extra func([]byte) []byte) ([]byte, error) {
	if len(columns) == 0 {
		return nil, errors.New("repast: a write needs at least one column")
	}
	body := append([]byte(`{"`), nameField...)
	body = append(body, `":`...)
	body = appendJSONString(body, name)
	body = append(body, `,"df":`...)
	body, err := encodeColumns(body, "df", columns)
	if err != nil {
		return nil, err
	}
	if extra != nil {
		body = extra(body)
	}
	return append(body, '}'), nil
}

// MaterializeRequest is a Materialize call: load the latest row per entity with an event
// time in [Start, End] into the online store, for FeatureViews (all when empty).
type MaterializeRequest struct {
	Start, End            time.Time
	FeatureViews          []string
	DisableEventTimestamp bool // load every row, ignoring Start and End
	// Async returns as soon as the server accepted the job (202) instead of when it is done.
	Async bool
	// Force starts the job even if another one holds the same views (else 409).
	Force bool
}

// Materialize runs (or, with Async, starts) a materialization on the server. A call that is
// retried after a lost answer runs the range again, which only rewrites the same rows.
func (c *Client) Materialize(ctx context.Context, req MaterializeRequest) error {
	body := map[string]any{"feature_views": req.FeatureViews}
	if req.DisableEventTimestamp {
		body["disable_event_timestamp"] = true
	} else {
		body["start_ts"] = req.Start.UTC().Format(rfc3339Micro)
		body["end_ts"] = req.End.UTC().Format(rfc3339Micro)
	}
	return c.jobCall(ctx, "/materialize", body, req.Async, req.Force)
}

// MaterializeIncremental materializes each view from where its last materialization ended
// (or now minus its ttl) to end; featureViews empty means all.
func (c *Client) MaterializeIncremental(ctx context.Context, end time.Time, featureViews ...string) error {
	body := map[string]any{"end_ts": end.UTC().Format(rfc3339Micro), "feature_views": featureViews}
	return c.jobCall(ctx, "/materialize-incremental", body, false, false)
}

func (c *Client) jobCall(ctx context.Context, path string, body map[string]any, async, force bool) error {
	if views, ok := body["feature_views"].([]string); ok && len(views) == 0 {
		delete(body, "feature_views")
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var query []string
	if async {
		query = append(query, "async=true")
	}
	if force {
		query = append(query, "force=true")
	}
	if len(query) > 0 {
		path += "?" + strings.Join(query, "&")
	}
	_, _, err = c.call(ctx, http.MethodPost, path, raw)
	return err
}

// Health is the server's /health answer.
type Health struct {
	Status             string   `json:"status"` // "ok" or "unhealthy"
	Project            string   `json:"project"`
	RegistryVersion    string   `json:"registry_version"`
	RegistryAgeSeconds float64  `json:"registry_age_seconds"`
	RegistryRefreshErr *string  `json:"registry_refresh_error"`
	Problems           []string `json:"problems"`
}

// Health asks the server whether it and its backends answer. It is a probe, so it is never
// retried: an unhealthy server returns its Health and an *Error with status 503.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	retry := *c
	retry.retry.MaxRetries = 0
	_, out, err := retry.call(ctx, http.MethodGet, "/health", nil)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusServiceUnavailable {
		var h Health
		if json.Unmarshal(apiErr.Body, &h) == nil && h.Status != "" {
			apiErr.Kind, apiErr.Detail, apiErr.Body = "Unhealthy", strings.Join(h.Problems, "; "), nil
			return &h, apiErr
		}
	}
	if err != nil {
		return nil, err
	}
	var h Health
	if err := json.Unmarshal(out, &h); err != nil {
		return nil, &DecodeError{Path: "/health", Err: err}
	}
	return &h, nil
}
