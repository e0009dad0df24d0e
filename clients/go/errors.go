package repast

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is a non-2xx answer from the server. Kind and Detail are the server's `error` and
// `detail`; Body holds the raw body when it had another shape (a proxy's HTML page, say).
// The server answers errors in the shape of Feast's feature server, a JSON string whose text
// is a JSON document (`"{\"class\": ..., \"error\": ..., \"detail\": ...}"`), so that
// Feast's Python client can read them too; FeastClass is that document's `class`.
type Error struct {
	Method     string
	Path       string
	StatusCode int
	Kind       string
	Detail     string
	FeastClass string
	// FeatureViews names the views already being materialized, on a 409 from /materialize.
	FeatureViews []string
	Body         []byte
}

func (e *Error) Error() string {
	what := e.Kind
	if what == "" {
		what = http.StatusText(e.StatusCode)
	}
	msg := e.Detail
	if msg == "" && e.Kind == "" {
		msg = string(e.Body)
	}
	return fmt.Sprintf("repast: %s %s: %d %s: %s", e.Method, e.Path, e.StatusCode, what, msg)
}

// Temporary reports whether the call may succeed when repeated later unchanged: true for
// 503 (a backend of the server is down), which is also the only status the client retries.
func (e *Error) Temporary() bool { return e.StatusCode == http.StatusServiceUnavailable }

// ConnectionError is a call that never got an HTTP answer: the connection was refused,
// reset or closed early, on every attempt. Err is the last attempt's error.
type ConnectionError struct {
	Method   string
	Path     string
	Attempts int
	Err      error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("repast: %s %s: no answer after %d attempt(s): %v", e.Method, e.Path, e.Attempts, e.Err)
}

func (e *ConnectionError) Unwrap() error { return e.Err }

// DecodeError is a 2xx answer whose body the client could not read as the endpoint's JSON.
type DecodeError struct {
	Path string
	Err  error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("repast: %s: unexpected response body: %v", e.Path, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// StatusCode is the HTTP status of err when it is (or wraps) an *Error, else 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

func newError(method, path string, status int, body []byte) *Error {
	e := &Error{Method: method, Path: path, StatusCode: status}
	var shaped struct {
		Error        *string  `json:"error"`
		Detail       *string  `json:"detail"`
		Class        string   `json:"class"`
		FeatureViews []string `json:"feature_views"`
	}
	document := body
	var inner string
	if json.Unmarshal(body, &inner) == nil {
		document = []byte(inner)
	}
	if json.Unmarshal(document, &shaped) == nil && shaped.Error != nil {
		e.Kind = *shaped.Error
		e.FeastClass = shaped.Class
		if shaped.Detail != nil {
			e.Detail = *shaped.Detail
		} else {
			// The 409 of /materialize carries its message in `error` and no `detail`.
			e.Kind, e.Detail = http.StatusText(status), *shaped.Error
		}
		e.FeatureViews = shaped.FeatureViews
		return e
	}
	e.Body = body
	return e
}
