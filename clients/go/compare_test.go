package repast_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	repast "github.com/repast-dev/repast/clients/go"
)

// kindOf is the value type of a column of the test repo, from its (short or full) name.
func kindOf(name string) string {
	if i := strings.LastIndex(name, "__"); i >= 0 {
		name = name[i+2:]
	}
	switch name {
	case "driver_id", "visits":
		return "i64"
	case "user_id":
		return "str"
	case "score":
		return "f64"
	}
	if len(name) == 3 && name[0] == 'w' && name[1] >= '0' && name[1] <= '9' {
		i, _ := strconv.Atoi(name[1:])
		return [...]string{"i64", "f64", "f32", "str", "i32", "flag"}[i%6]
	}
	return name
}

// clientValues reads a column with the client's accessor for its kind, one value per row
// (nil for null), as plain Go values.
func clientValues(t *testing.T, c *repast.ResultColumn) []any {
	t.Helper()
	kind := kindOf(c.Name)
	list := strings.HasSuffix(kind, "_list")
	var got any
	var err error
	switch strings.TrimSuffix(kind, "_list") + map[bool]string{true: "[]"}[list] {
	case "i32":
		got, err = c.Int32s()
	case "i64":
		got, err = c.Int64s()
	case "f32":
		got, err = c.Float32s()
	case "f64":
		got, err = c.Float64s()
	case "str":
		got, err = c.Strings()
	case "byt":
		got, err = c.Bytes()
	case "flag":
		got, err = c.Bools()
	case "ts":
		got, err = c.Times()
	case "i32[]":
		got, err = c.Int32Lists()
	case "i64[]":
		got, err = c.Int64Lists()
	case "f32[]":
		got, err = c.Float32Lists()
	case "f64[]":
		got, err = c.Float64Lists()
	case "str[]":
		got, err = c.StringLists()
	case "byt[]":
		got, err = c.BytesLists()
	case "flag[]":
		got, err = c.BoolLists()
	case "ts[]":
		got, err = c.TimeLists()
	default:
		t.Fatalf("column %q: no kind %q", c.Name, kind)
	}
	if err != nil {
		t.Fatalf("column %q: %v", c.Name, err)
	}
	out := make([]any, c.Len())
	for i := range out {
		if !c.IsNull(i) {
			out[i] = index(got, i)
		}
	}
	return out
}

func index(slice any, i int) any {
	switch s := slice.(type) {
	case []int32:
		return s[i]
	case []int64:
		return s[i]
	case []float32:
		return s[i]
	case []float64:
		return s[i]
	case []string:
		return s[i]
	case [][]byte:
		return s[i]
	case []bool:
		return s[i]
	case []time.Time:
		return s[i]
	case [][]int32:
		return s[i]
	case [][]int64:
		return s[i]
	case [][]float32:
		return s[i]
	case [][]float64:
		return s[i]
	case [][]string:
		return s[i]
	case [][][]byte:
		return s[i]
	case [][]bool:
		return s[i]
	case [][]time.Time:
		return s[i]
	}
	panic(fmt.Sprintf("index: %T", slice))
}

// sdkValue decodes one of the oracle's JSON values with encoding/json alone (not the
// client's decoders) into the Go value the client should return.
func sdkValue(t *testing.T, kind string, raw json.RawMessage) any {
	t.Helper()
	if string(raw) == "null" {
		return nil
	}
	must := func(err error) {
		if err != nil {
			t.Fatalf("oracle value %s as %s: %v", raw, kind, err)
		}
	}
	if elem, ok := strings.CutSuffix(kind, "_list"); ok {
		var items []json.RawMessage
		must(json.Unmarshal(raw, &items))
		var out any
		switch elem {
		case "i32":
			out = mapList(t, elem, items, func(v any) int32 { return v.(int32) })
		case "i64":
			out = mapList(t, elem, items, func(v any) int64 { return v.(int64) })
		case "f32":
			out = mapList(t, elem, items, func(v any) float32 { return v.(float32) })
		case "f64":
			out = mapList(t, elem, items, func(v any) float64 { return v.(float64) })
		case "str":
			out = mapList(t, elem, items, func(v any) string { return v.(string) })
		case "byt":
			out = mapList(t, elem, items, func(v any) []byte { return v.([]byte) })
		case "flag":
			out = mapList(t, elem, items, func(v any) bool { return v.(bool) })
		case "ts":
			out = mapList(t, elem, items, func(v any) time.Time { return v.(time.Time) })
		}
		return out
	}
	switch kind {
	case "i32":
		var v int32
		must(json.Unmarshal(raw, &v))
		return v
	case "i64":
		var v int64
		must(json.Unmarshal(raw, &v))
		return v
	case "f32", "f64":
		var v any
		must(json.Unmarshal(raw, &v))
		f, ok := v.(float64)
		if !ok {
			f = map[string]float64{"NaN": math.NaN(), "Infinity": math.Inf(1), "-Infinity": math.Inf(-1)}[v.(string)]
		}
		if kind == "f32" {
			return float32(f)
		}
		return f
	case "str":
		var v string
		must(json.Unmarshal(raw, &v))
		return v
	case "byt":
		var v string
		must(json.Unmarshal(raw, &v))
		b, err := base64.StdEncoding.DecodeString(v)
		must(err)
		return b
	case "flag":
		var v bool
		must(json.Unmarshal(raw, &v))
		return v
	case "ts":
		var v int64
		must(json.Unmarshal(raw, &v))
		return time.Unix(v, 0).UTC()
	}
	t.Fatalf("no kind %q", kind)
	return nil
}

func mapList[T any](t *testing.T, elem string, items []json.RawMessage, conv func(any) T) []T {
	out := make([]T, len(items))
	for i, item := range items {
		out[i] = conv(sdkValue(t, elem, item))
	}
	return out
}

// same compares with %#v, so NaN equals NaN and a float32 is compared as a float32.
func same(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b)
}

// assertEqualsSDK checks that the client's response has the oracle's names, and per column
// the same values, statuses and event times, row by row.
func assertEqualsSDK(t *testing.T, got *repast.OnlineResponse, want oracle) {
	t.Helper()
	if fmt.Sprint(got.FeatureNames) != fmt.Sprint(want.FeatureNames) {
		t.Fatalf("feature names: got %v, the SDK has %v", got.FeatureNames, want.FeatureNames)
	}
	for i, col := range got.Columns {
		exp := want.Columns[i]
		if col.Len() != len(exp.Values) {
			t.Fatalf("column %q: %d rows, the SDK has %d", col.Name, col.Len(), len(exp.Values))
		}
		values := clientValues(t, col)
		for row := range values {
			wantValue := sdkValue(t, kindOf(col.Name), exp.Values[row])
			if !same(values[row], wantValue) && !(times(values[row], wantValue)) {
				t.Errorf("column %q row %d: got %#v, the SDK has %#v", col.Name, row, values[row], wantValue)
			}
			if col.Statuses[row].String() != exp.Statuses[row] {
				t.Errorf("column %q row %d: status %v, the SDK has %s", col.Name, row, col.Statuses[row], exp.Statuses[row])
			}
			if us := col.EventTimestamps[row].UnixMicro(); us != exp.EventTimestampsUS[row] {
				t.Errorf("column %q row %d: event time %d us, the SDK has %d us", col.Name, row, us, exp.EventTimestampsUS[row])
			}
		}
	}
}

// times compares lists of instants by instant, not by location.
func times(a, b any) bool {
	la, ok := a.([]time.Time)
	lb, ok2 := b.([]time.Time)
	if !ok || !ok2 || len(la) != len(lb) {
		return false
	}
	for i := range la {
		if !la[i].Equal(lb[i]) {
			return false
		}
	}
	return true
}
