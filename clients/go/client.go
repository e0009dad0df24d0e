package repast

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client calls one feature server. It is safe for concurrent use; its connections are
// pooled and kept alive between calls.
type Client struct {
	base    string
	http    *http.Client
	auth    string
	timeout time.Duration
	retry   RetryPolicy
	onRetry func(RetryEvent)
}

// RetryPolicy says how often and how long to wait before repeating a call that failed with
// 503 or a connection error. The wait before retry n (from 1) is a uniformly random duration
// in [0, min(MaxBackoff, InitialBackoff*2^(n-1))] ("full jitter"), so many clients that
// failed together do not come back together.
type RetryPolicy struct {
	MaxRetries     int // retries after the first attempt; 0 disables retrying
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// DefaultRetryPolicy retries 3 times, waiting at most 0.1, 0.2 and 0.4 s (random below those).
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 3, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}

// RetryEvent describes a failed attempt that is about to be retried (see WithRetryHook).
type RetryEvent struct {
	Method  string
	Path    string
	Attempt int           // the attempt that failed, from 1
	Wait    time.Duration // the backoff before the next attempt
	Err     error         // an *Error (503) or the connection error
}

// Option configures a Client in New.
type Option func(*Client)

// WithToken sends `Authorization: Bearer <token>` on every call (an empty token sends none).
func WithToken(token string) Option {
	return func(c *Client) {
		if token != "" {
			c.auth = "Bearer " + token
		}
	}
}

// WithTimeout bounds each call, retries and backoff included, unless the call's context
// has an earlier deadline. The default is 10 s; 0 leaves calls bounded only by their context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetry replaces DefaultRetryPolicy.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithRetryHook calls f before each retry, e.g. to log or count them. f must be safe for
// concurrent use.
func WithRetryHook(f func(RetryEvent)) Option { return func(c *Client) { c.onRetry = f } }

// WithHTTPClient uses hc instead of the client's own pooled one (for a custom TLS config or
// proxy). Its Timeout, if any, applies to each attempt.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.http = hc } }

// New returns a Client for the server at baseURL (scheme, host and port, optionally a path
// prefix), e.g. "http://127.0.0.1:6566".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("repast: base URL %q must be http(s)://host[:port][/prefix]", baseURL)
	}
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		timeout: 10 * time.Second,
		retry:   DefaultRetryPolicy,
	}
	for _, opt := range opts {
		opt(c)
	}
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport()}
	}
	return c, nil
}

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// The default keeps 2 idle connections per host: with more concurrent callers than that,
	// every call beyond the second would open (and later close) a connection of its own.
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	// The server answers uncompressed JSON; asking for gzip only adds a header to every call.
	t.DisableCompression = true
	return t
}

// CloseIdleConnections closes the pooled connections that are not in use.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Request bodies are built in pooled buffers: a GetOnlineFeatures call allocates none of its own.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// call sends method path with body (nil for none) and returns the 2xx answer's body.
func (c *Client) call(ctx context.Context, method, path string, body []byte) (status int, out []byte, err error) {
	if c.timeout > 0 {
		if deadline, ok := ctx.Deadline(); !ok || time.Until(deadline) > c.timeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
	}
	for attempt := 1; ; attempt++ {
		status, out, err = c.attempt(ctx, method, path, body)
		if err == nil || attempt > c.retry.MaxRetries || !retryable(ctx, err) {
			var t *transportError
			if errors.As(err, &t) {
				err = &ConnectionError{Method: method, Path: path, Attempts: attempt, Err: t.err}
			}
			return status, out, err
		}
		wait := c.backoff(attempt)
		if c.onRetry != nil {
			c.onRetry(RetryEvent{Method: method, Path: path, Attempt: attempt, Wait: wait, Err: err})
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			// The last failure says more than "deadline exceeded" alone.
			return status, nil, fmt.Errorf("repast: %s %s: %w after %d attempt(s), last: %v", method, path, ctx.Err(), attempt, err)
		case <-timer.C:
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.retry.MaxBackoff
	if shift := attempt - 1; shift < 30 {
		if d := c.retry.InitialBackoff << shift; d > 0 && (ceiling <= 0 || d < ceiling) {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

func (c *Client) attempt(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, reader)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header["Content-Type"] = jsonContentType
	}
	req.Header["Accept"] = jsonContentType
	if c.auth != "" {
		req.Header["Authorization"] = []string{c.auth}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, asTransportError(ctx, err)
	}
	defer resp.Body.Close()
	out, err := readBody(resp)
	if err != nil {
		return 0, nil, asTransportError(ctx, err)
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, nil, newError(method, path, resp.StatusCode, out)
	}
	return resp.StatusCode, out, nil
}

var jsonContentType = []string{"application/json"}

func readBody(resp *http.Response) ([]byte, error) {
	// Reading into a buffer of the announced size avoids io.ReadAll's regrowth steps.
	if n := resp.ContentLength; n >= 0 && n < 64<<20 {
		out := make([]byte, n)
		_, err := io.ReadFull(resp.Body, out)
		return out, err
	}
	return io.ReadAll(resp.Body)
}

func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Temporary()
	}
	var t *transportError
	return errors.As(err, &t)
}

// transportError marks a call that got no (complete) HTTP answer for a reason other than its
// own context: refused, reset, closed before or while the answer was read.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func asTransportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// Canceled or past its deadline: the caller's decision, never retried.
		return fmt.Errorf("repast: %w (%v)", ctx.Err(), err)
	}
	return &transportError{err}
}
