package repast

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
)

// Status says how a value was found (Feast's FieldStatus).
type Status uint8

const (
	StatusInvalid       Status = 0
	StatusPresent       Status = 1
	StatusNullValue     Status = 2
	StatusNotFound      Status = 3
	StatusOutsideMaxAge Status = 4
)

var statusNames = [...]string{"INVALID", "PRESENT", "NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

func parseStatus(name string) (Status, error) {
	switch name {
	case "PRESENT":
		return StatusPresent, nil
	case "NOT_FOUND":
		return StatusNotFound, nil
	case "OUTSIDE_MAX_AGE":
		return StatusOutsideMaxAge, nil
	case "NULL_VALUE":
		return StatusNullValue, nil
	case "INVALID":
		return StatusInvalid, nil
	}
	return 0, fmt.Errorf("unknown status %q", name)
}

// OnlineResponse holds the answer to GetOnlineFeatures: one column per name of
// FeatureNames (join keys first, then the features in request order), each with one value,
// status and event time per entity row, in the request's row order.
type OnlineResponse struct {
	FeatureNames []string
	Columns      []*ResultColumn

	indexOnce sync.Once
	index     map[string]*ResultColumn
}

// Column returns the column called name, or nil.
func (r *OnlineResponse) Column(name string) *ResultColumn {
	if len(r.Columns) <= 8 {
		for _, c := range r.Columns {
			if c.Name == name {
				return c
			}
		}
		return nil
	}
	// Built on the first look-up by name: callers that read columns by position never pay it.
	r.indexOnce.Do(func() {
		r.index = make(map[string]*ResultColumn, len(r.Columns))
		for _, c := range r.Columns {
			if _, dup := r.index[c.Name]; !dup {
				r.index[c.Name] = c
			}
		}
	})
	return r.index[name]
}

// Rows is the number of entity rows.
func (r *OnlineResponse) Rows() int {
	if len(r.Columns) == 0 {
		return 0
	}
	return len(r.Columns[0].Statuses)
}

// ResultColumn is one column of an OnlineResponse. The JSON answer does not say a column's
// type, so its values are read with the accessor of the feature's type (Int64s, Float64s,
// Strings, ...), which fails on a value of another JSON kind. A null value (a stored null,
// or a row whose status is NOT_FOUND) reads as the zero value (nil for slices and lists);
// IsNull tells them apart.
type ResultColumn struct {
	Name            string
	Statuses        []Status
	EventTimestamps []time.Time
	values          []json.RawMessage
}

// Len is the number of rows.
func (c *ResultColumn) Len() int { return len(c.values) }

// IsNull reports whether row's value is null.
func (c *ResultColumn) IsNull(row int) bool { return isNull(c.values[row]) }

// Raw is row's value as the server wrote it (JSON).
func (c *ResultColumn) Raw(row int) json.RawMessage { return c.values[row] }

func isNull(v json.RawMessage) bool { return len(v) == 4 && string(v) == "null" }

func decodeColumn[T any](c *ResultColumn, kind string, parse func(json.RawMessage) (T, error)) ([]T, error) {
	out := make([]T, len(c.values))
	for i, v := range c.values {
		if isNull(v) {
			continue
		}
		x, err := parse(v)
		if err != nil {
			return nil, fmt.Errorf("repast: column %q row %d: %s: %w", c.Name, i, kind, err)
		}
		out[i] = x
	}
	return out, nil
}

func listOf[T any](parse func(json.RawMessage) (T, error)) func(json.RawMessage) ([]T, error) {
	return func(v json.RawMessage) ([]T, error) {
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, fmt.Errorf("not a list: %s", v)
		}
		out := make([]T, len(items))
		for i, item := range items {
			if isNull(item) {
				continue
			}
			x, err := parse(item)
			if err != nil {
				return nil, err
			}
			out[i] = x
		}
		return out, nil
	}
}

func parseInt64(v json.RawMessage) (int64, error) {
	return strconv.ParseInt(string(v), 10, 64)
}

func parseInt32(v json.RawMessage) (int32, error) {
	x, err := strconv.ParseInt(string(v), 10, 32)
	return int32(x), err
}

func parseFloat64(v json.RawMessage) (float64, error) {
	if len(v) > 0 && v[0] == '"' {
		switch string(v) {
		case `"NaN"`:
			return math.NaN(), nil
		case `"Infinity"`:
			return math.Inf(1), nil
		case `"-Infinity"`:
			return math.Inf(-1), nil
		}
		return 0, fmt.Errorf("not a number: %s", v)
	}
	return strconv.ParseFloat(string(v), 64)
}

func parseFloat32(v json.RawMessage) (float32, error) {
	x, err := parseFloat64(v)
	// float32 features arrive widened to float64; narrowing gives back the stored float32.
	return float32(x), err
}

func parseString(v json.RawMessage) (string, error) {
	if len(v) < 2 || v[0] != '"' {
		return "", fmt.Errorf("not a string: %s", v)
	}
	if s, ok := plainString(v); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// plainString is the content of a JSON string without escapes, without a decoder pass.
func plainString(v json.RawMessage) (string, bool) {
	inner := v[1 : len(v)-1]
	for _, b := range inner {
		if b == '\\' || b < 0x20 {
			return "", false
		}
	}
	return string(inner), true
}

func parseBytes(v json.RawMessage) ([]byte, error) {
	s, err := parseString(v)
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(s)
}

func parseBool(v json.RawMessage) (bool, error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %s", v)
}

// UnixTimestamp features are integer seconds since the epoch.
func parseUnix(v json.RawMessage) (time.Time, error) {
	s, err := parseInt64(v)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(s, 0).UTC(), nil
}

// Int64s reads the column as Int64 values.
func (c *ResultColumn) Int64s() ([]int64, error) { return decodeColumn(c, "int64", parseInt64) }

// Int32s reads the column as Int32 values.
func (c *ResultColumn) Int32s() ([]int32, error) { return decodeColumn(c, "int32", parseInt32) }

// Float64s reads the column as Float64 values ("NaN", "Infinity", "-Infinity" included).
func (c *ResultColumn) Float64s() ([]float64, error) {
	return decodeColumn(c, "float64", parseFloat64)
}

// Float32s reads the column as Float32 values.
func (c *ResultColumn) Float32s() ([]float32, error) {
	return decodeColumn(c, "float32", parseFloat32)
}

// Strings reads the column as String values.
func (c *ResultColumn) Strings() ([]string, error) { return decodeColumn(c, "string", parseString) }

// Bytes reads the column as Bytes values (base64 in the JSON).
func (c *ResultColumn) Bytes() ([][]byte, error) { return decodeColumn(c, "bytes", parseBytes) }

// Bools reads the column as Bool values.
func (c *ResultColumn) Bools() ([]bool, error) { return decodeColumn(c, "bool", parseBool) }

// Times reads the column as UnixTimestamp values (whole seconds, UTC).
func (c *ResultColumn) Times() ([]time.Time, error) {
	return decodeColumn(c, "unix timestamp", parseUnix)
}

// Int64Lists reads the column as Array(Int64) values.
func (c *ResultColumn) Int64Lists() ([][]int64, error) {
	return decodeColumn(c, "list of int64", listOf(parseInt64))
}

// Int32Lists reads the column as Array(Int32) values.
func (c *ResultColumn) Int32Lists() ([][]int32, error) {
	return decodeColumn(c, "list of int32", listOf(parseInt32))
}

// Float64Lists reads the column as Array(Float64) values.
func (c *ResultColumn) Float64Lists() ([][]float64, error) {
	return decodeColumn(c, "list of float64", listOf(parseFloat64))
}

// Float32Lists reads the column as Array(Float32) values.
func (c *ResultColumn) Float32Lists() ([][]float32, error) {
	return decodeColumn(c, "list of float32", listOf(parseFloat32))
}

// StringLists reads the column as Array(String) values.
func (c *ResultColumn) StringLists() ([][]string, error) {
	return decodeColumn(c, "list of string", listOf(parseString))
}

// BytesLists reads the column as Array(Bytes) values.
func (c *ResultColumn) BytesLists() ([][][]byte, error) {
	return decodeColumn(c, "list of bytes", listOf(parseBytes))
}

// BoolLists reads the column as Array(Bool) values.
func (c *ResultColumn) BoolLists() ([][]bool, error) {
	return decodeColumn(c, "list of bool", listOf(parseBool))
}

// TimeLists reads the column as Array(UnixTimestamp) values.
func (c *ResultColumn) TimeLists() ([][]time.Time, error) {
	return decodeColumn(c, "list of unix timestamps", listOf(parseUnix))
}

// timeCache remembers the last timestamp parsed: the views of one entity row share their
// event times, so most strings of an answer repeat the one before.
type timeCache struct {
	last string
	t    time.Time
}

var epoch = time.Unix(0, 0).UTC()

func (c *timeCache) parse(s string) (time.Time, error) {
	if s == c.last && s != "" {
		return c.t, nil
	}
	if s == "1970-01-01T00:00:00Z" {
		return epoch, nil
	}
	t, ok := parseUTC(s)
	if !ok {
		var err error
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return time.Time{}, err
		}
	}
	c.last, c.t = s, t
	return t, nil
}

// parseUTC reads the server's own form, "2024-01-01T12:00:00[.fff[fff[fff]]]Z", about ten
// times faster than time.Parse; anything else is left to time.Parse.
func parseUTC(s string) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	nanos := 0
	if len(s) > 20 {
		frac := s[20 : len(s)-1]
		if s[19] != '.' || len(frac) == 0 || len(frac) > 9 {
			return time.Time{}, false
		}
		n, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for i := len(frac); i < 9; i++ {
			n *= 10
		}
		nanos = n
	} else if s[19] != 'Z' {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nanos, time.UTC)
	// time.Date normalizes 31 February into March; the server never writes such a date.
	if t.Day() != day {
		return time.Time{}, false
	}
	return t, true
}
