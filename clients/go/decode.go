package repast

import (
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
	// About one value per 90 bytes of a 1-row answer; a guess, the appends grow past it.
	guess := len(d.buf)/90 + 1
	cols := make([]wireColumn, 0, guess)
	names := make([]string, 0, guess)
	d.values = make([]json.RawMessage, 0, guess)
	d.statuses = make([]Status, 0, guess)
	d.timestamps = make([]time.Time, 0, guess)
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	for first := true; ; first = false {
		key, end, err := d.nextKey(first)
		if err != nil {
			return nil, err
		}
		if end {
			break
		}
		switch key {
		case "results":
			cols, err = d.results(cols)
		case "metadata":
			names, err = d.metadata(names)
		default:
			err = d.skip()
		}
		if err != nil {
			return nil, err
		}
	}
	if d.ws(); d.pos != len(d.buf) {
		return nil, errors.New("data after the JSON document")
	}
	if len(names) != len(cols) {
		return nil, fmt.Errorf("%d feature names for %d result columns", len(names), len(cols))
	}
	r := &OnlineResponse{FeatureNames: names, Columns: make([]*ResultColumn, len(cols))}
	slab := make([]ResultColumn, len(cols))
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
	}
	return r, nil
}

func (d *decoder) results(cols []wireColumn) ([]wireColumn, error) {
	if err := d.expect('['); err != nil {
		return cols, err
	}
	for first := true; ; first = false {
		end, err := d.nextElem(first)
		if err != nil || end {
			return cols, err
		}
		col := wireColumn{len(d.values), len(d.values), len(d.statuses), len(d.statuses), len(d.timestamps), len(d.timestamps)}
		if err := d.expect('{'); err != nil {
			return cols, err
		}
		for first := true; ; first = false {
			key, end, err := d.nextKey(first)
			if err != nil {
				return cols, err
			}
			if end {
				break
			}
			switch key {
			case "values":
				err = d.valueList()
				col.v1 = len(d.values)
			case "statuses":
				err = d.statusList()
				col.s1 = len(d.statuses)
			case "event_timestamps":
				err = d.timeList()
				col.t1 = len(d.timestamps)
			default:
				err = d.skip()
			}
			if err != nil {
				return cols, err
			}
		}
		cols = append(cols, col)
	}
}

func (d *decoder) valueList() error {
	if err := d.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		end, err := d.nextElem(first)
		if err != nil || end {
			return err
		}
		start := d.pos
		if err := d.skip(); err != nil {
			return err
		}
		d.values = append(d.values, d.buf[start:d.pos:d.pos])
	}
}

func (d *decoder) statusList() error {
	if err := d.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		end, err := d.nextElem(first)
		if err != nil || end {
			return err
		}
		s, err := d.str()
		if err != nil {
			return err
		}
		st, err := parseStatus(s)
		if err != nil {
			return err
		}
		d.statuses = append(d.statuses, st)
	}
}

func (d *decoder) timeList() error {
	if err := d.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		end, err := d.nextElem(first)
		if err != nil || end {
			return err
		}
		s, err := d.str()
		if err != nil {
			return err
		}
		t, err := d.times.parse(s)
		if err != nil {
			return err
		}
		d.timestamps = append(d.timestamps, t)
	}
}

func (d *decoder) metadata(names []string) ([]string, error) {
	if err := d.expect('{'); err != nil {
		return names, err
	}
	for first := true; ; first = false {
		key, end, err := d.nextKey(first)
		if err != nil || end {
			return names, err
		}
		if key != "feature_names" {
			if err := d.skip(); err != nil {
				return names, err
			}
			continue
		}
		if err := d.expect('['); err != nil {
			return names, err
		}
		for first := true; ; first = false {
			end, err := d.nextElem(first)
			if err != nil {
				return names, err
			}
			if end {
				break
			}
			s, err := d.str()
			if err != nil {
				return names, err
			}
			names = append(names, s)
		}
	}
}

// nextKey, after an object's '{' (first) or one of its values, reads the next key and its
// ':'; end is true at the object's '}'.
func (d *decoder) nextKey(first bool) (key string, end bool, err error) {
	c := d.peek()
	if c == '}' {
		d.pos++
		return "", true, nil
	}
	if !first {
		if c != ',' {
			return "", false, fmt.Errorf("%w: expected ',' or '}'", errSyntax)
		}
		d.pos++
	}
	if key, err = d.str(); err != nil {
		return "", false, err
	}
	return key, false, d.expect(':')
}

// nextElem, after an array's '[' (first) or one of its elements, moves to the next element;
// end is true at the array's ']'.
func (d *decoder) nextElem(first bool) (end bool, err error) {
	c := d.peek()
	if c == ']' {
		d.pos++
		return true, nil
	}
	if !first {
		if c != ',' {
			return false, fmt.Errorf("%w: expected ',' or ']'", errSyntax)
		}
		d.pos++
		d.ws()
	}
	return false, nil
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
// values they read); its extent exactly: brackets are counted outside strings.
func (d *decoder) skip() error {
	switch c := d.peek(); c {
	case '"':
		_, err := d.rawString()
		return err
	case '[', '{':
		depth := 0
		for d.pos < len(d.buf) {
			switch d.buf[d.pos] {
			case '"':
				if _, err := d.rawString(); err != nil {
					return err
				}
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					d.pos++
					return nil
				}
			}
			d.pos++
		}
		return fmt.Errorf("%w: unterminated %q", errSyntax, c)
	case 0, ',', ']', '}', ':':
		return fmt.Errorf("%w: expected a value", errSyntax)
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
