package repast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// decodeOnlineResponse reads the /get-online-features answer with a scanner made for its
// shape: values stay slices of the body (decoded only by the accessor the caller picks),
// statuses and event times are read without a string per value, and the columns share a
// few allocations. encoding/json with json.RawMessage costs several times more for a
// 1 x 50 answer, and the client's own CPU per call is what a caller on the request path pays.
func decodeOnlineResponse(body []byte) (*OnlineResponse, error) {
	d := decoder{buf: body, text: string(body)}
	r, err := d.response()
	if err != nil {
		return nil, fmt.Errorf("%w at byte %d", err, d.pos)
	}
	return r, nil
}

type decoder struct {
	buf  []byte
	text string // buf as a string once, so names are substrings of it, not copies
	pos  int
	// Every column's values, statuses and event times, back to back: three allocations per
	// answer instead of three per column.
	values     []json.RawMessage
	statuses   []Status
	timestamps []time.Time
	times      timeCache
}

var errSyntax = errors.New("invalid JSON")

// wireColumn is where a column's values, statuses and event times start and end in the
// decoder's shared slices.
type wireColumn struct{ v0, v1, s0, s1, t0, t1 int }

func (d *decoder) response() (*OnlineResponse, error) {
	ncols := bytes.Count(d.buf, []byte(`"statuses"`))
	cols := make([]wireColumn, 0, ncols)
	names := make([]string, 0, ncols)
	// About one value per 60 bytes of an answer; a guess, the appends grow past it.
	guess := len(d.buf)/60 + 1
	d.values = make([]json.RawMessage, 0, guess)
	d.statuses = make([]Status, 0, guess)
	d.timestamps = make([]time.Time, 0, guess)
	err := d.object(func(key string) error {
		switch key {
		case "results":
			return d.array(func() error {
				col := wireColumn{len(d.values), len(d.values), len(d.statuses), len(d.statuses), len(d.timestamps), len(d.timestamps)}
				err := d.object(func(key string) error {
					switch key {
					case "values":
						return d.array(func() error {
							start := d.pos
							if err := d.skip(); err != nil {
								return err
							}
							d.values = append(d.values, d.buf[start:d.pos:d.pos])
							col.v1 = len(d.values)
							return nil
						})
					case "statuses":
						return d.array(func() error {
							s, err := d.str()
							if err != nil {
								return err
							}
							st, err := parseStatus(s)
							d.statuses = append(d.statuses, st)
							col.s1 = len(d.statuses)
							return err
						})
					case "event_timestamps":
						return d.array(func() error {
							s, err := d.str()
							if err != nil {
								return err
							}
							t, err := d.times.parse(s)
							d.timestamps = append(d.timestamps, t)
							col.t1 = len(d.timestamps)
							return err
						})
					}
					return d.skip()
				})
				cols = append(cols, col)
				return err
			})
		case "metadata":
			return d.object(func(key string) error {
				if key != "feature_names" {
					return d.skip()
				}
				return d.array(func() error {
					s, err := d.str()
					names = append(names, s)
					return err
				})
			})
		}
		return d.skip()
	})
	if err != nil {
		return nil, err
	}
	if d.ws(); d.pos != len(d.buf) {
		return nil, errors.New("data after the JSON document")
	}
	if len(names) != len(cols) {
		return nil, fmt.Errorf("%d feature names for %d result columns", len(names), len(cols))
	}
	r := &OnlineResponse{FeatureNames: names, Columns: make([]*ResultColumn, len(cols))}
	slab := make([]ResultColumn, len(cols))
	if len(names) > 8 {
		r.index = make(map[string]int, len(names))
	}
	for i, c := range cols {
		n := c.v1 - c.v0
		if c.s1-c.s0 != n || c.t1-c.t0 != n {
			return nil, fmt.Errorf("column %q: %d values, %d statuses, %d event timestamps", names[i], n, c.s1-c.s0, c.t1-c.t0)
		}
		// Full slice expressions: a caller's append to one column cannot write into the next.
		slab[i] = ResultColumn{
			Name:            names[i],
			Statuses:        d.statuses[c.s0:c.s1:c.s1],
			EventTimestamps: d.timestamps[c.t0:c.t1:c.t1],
			values:          d.values[c.v0:c.v1:c.v1],
		}
		r.Columns[i] = &slab[i]
		if r.index != nil {
			r.index[names[i]] = i
		}
	}
	return r, nil
}

func (d *decoder) ws() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) expect(c byte) error {
	d.ws()
	if d.pos >= len(d.buf) || d.buf[d.pos] != c {
		return fmt.Errorf("%w: expected %q", errSyntax, c)
	}
	d.pos++
	return nil
}

// peek returns the next non-space byte (0 at the end) without consuming it.
func (d *decoder) peek() byte {
	d.ws()
	if d.pos >= len(d.buf) {
		return 0
	}
	return d.buf[d.pos]
}

func (d *decoder) object(field func(key string) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.pos++
		return nil
	}
	for {
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return fmt.Errorf("%w: expected ',' or '}'", errSyntax)
		}
	}
}

func (d *decoder) array(item func() error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for {
		d.ws()
		if err := item(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return fmt.Errorf("%w: expected ',' or ']'", errSyntax)
		}
	}
}

// str reads a JSON string: a substring of the body when it has no escapes.
func (d *decoder) str() (string, error) {
	if err := d.expect('"'); err != nil {
		return "", err
	}
	start := d.pos
	escaped := false
	for d.pos < len(d.buf) {
		switch c := d.buf[d.pos]; {
		case c == '"':
			d.pos++
			if !escaped {
				return d.text[start : d.pos-1], nil
			}
			var s string
			err := json.Unmarshal(d.buf[start-1:d.pos], &s)
			return s, err
		case c == '\\':
			escaped = true
			d.pos += 2
		case c < 0x20:
			return "", fmt.Errorf("%w: control character in a string", errSyntax)
		default:
			d.pos++
		}
	}
	return "", fmt.Errorf("%w: unterminated string", errSyntax)
}

// skip moves past one JSON value. Its syntax is checked loosely (the accessors check the
// values they read); its extent exactly.
func (d *decoder) skip() error {
	switch c := d.peek(); c {
	case '"':
		_, err := d.rawString()
		return err
	case '[':
		return d.array(d.skip)
	case '{':
		return d.object(func(string) error { return d.skip() })
	case 0:
		return fmt.Errorf("%w: unexpected end", errSyntax)
	default:
		start := d.pos
		for d.pos < len(d.buf) {
			switch d.buf[d.pos] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				if d.pos == start {
					return fmt.Errorf("%w: unexpected %q", errSyntax, c)
				}
				return nil
			}
			d.pos++
		}
		return nil
	}
}

// rawString moves past a string without unescaping it.
func (d *decoder) rawString() (int, error) {
	start := d.pos
	d.pos++
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case '"':
			d.pos++
			return start, nil
		case '\\':
			d.pos += 2
		default:
			d.pos++
		}
	}
	return start, fmt.Errorf("%w: unterminated string", errSyntax)
}
