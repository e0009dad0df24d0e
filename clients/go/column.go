package repast

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Column is a named column of typed values sent to the server: an entity column of a
// GetOnlineFeatures request, or a column of the rows of a push or an online write. Build one
// with Int64s, Strings, Float64Lists, ... and mark null rows with Null.
type Column struct {
	name  string
	n     int
	enc   func(dst []byte, row int) ([]byte, error)
	nulls map[int]bool
}

// Name is the column's name.
func (c Column) Name() string { return c.name }

// Len is the column's number of rows.
func (c Column) Len() int { return c.n }

// Null returns a copy of c whose given rows are null.
func (c Column) Null(rows ...int) Column {
	nulls := make(map[int]bool, len(c.nulls)+len(rows))
	for r := range c.nulls {
		nulls[r] = true
	}
	for _, r := range rows {
		nulls[r] = true
	}
	c.nulls = nulls
	return c
}

func (c Column) appendValue(dst []byte, row int) ([]byte, error) {
	if c.nulls[row] {
		return append(dst, "null"...), nil
	}
	return c.enc(dst, row)
}

func column[T any](name string, values []T, enc func([]byte, T) ([]byte, error)) Column {
	return Column{name: name, n: len(values), enc: func(dst []byte, row int) ([]byte, error) {
		return enc(dst, values[row])
	}}
}

func listColumn[T any](name string, values [][]T, enc func([]byte, T) ([]byte, error)) Column {
	return Column{name: name, n: len(values), enc: func(dst []byte, row int) ([]byte, error) {
		list := values[row]
		if list == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		var err error
		for i, v := range list {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = enc(dst, v); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	}}
}

func encInt32(dst []byte, v int32) ([]byte, error) { return strconv.AppendInt(dst, int64(v), 10), nil }
func encInt64(dst []byte, v int64) ([]byte, error) { return strconv.AppendInt(dst, v, 10), nil }
func encBool(dst []byte, v bool) ([]byte, error)   { return strconv.AppendBool(dst, v), nil }
func encString(dst []byte, v string) ([]byte, error) {
	return appendJSONString(dst, v), nil
}

func encFloat(bits int) func([]byte, float64) ([]byte, error) {
	return func(dst []byte, v float64) ([]byte, error) {
		switch {
		case math.IsNaN(v):
			return append(dst, `"NaN"`...), nil
		case math.IsInf(v, 1):
			return append(dst, `"Infinity"`...), nil
		case math.IsInf(v, -1):
			return append(dst, `"-Infinity"`...), nil
		}
		// The shortest form that reads back as the same float32 (or float64).
		return strconv.AppendFloat(dst, v, 'g', -1, bits), nil
	}
}

var encFloat64, encFloat32of64 = encFloat(64), encFloat(32)

func encFloat32(dst []byte, v float32) ([]byte, error) { return encFloat32of64(dst, float64(v)) }

// The server stores a pushed JSON string's UTF-8 bytes as a bytes value (it reads bytes back
// as base64, but does not decode base64 on writes), so only valid UTF-8 round-trips.
func encBytes(dst []byte, v []byte) ([]byte, error) {
	if !utf8.Valid(v) {
		return dst, fmt.Errorf("bytes value %q is not valid UTF-8, which is all the server's JSON push accepts for bytes", v)
	}
	return appendJSONString(dst, string(v)), nil
}

// rfc3339Micro: the server keeps microseconds and refuses more fractional digits.
const rfc3339Micro = "2006-01-02T15:04:05.999999Z07:00"

func encTime(dst []byte, v time.Time) ([]byte, error) {
	dst = append(dst, '"')
	dst = v.UTC().AppendFormat(dst, rfc3339Micro)
	return append(dst, '"'), nil
}

// Int64s is a column of int64 values (Int64 features, int64 join keys).
func Int64s(name string, values ...int64) Column { return column(name, values, encInt64) }

// Int32s is a column of int32 values.
func Int32s(name string, values ...int32) Column { return column(name, values, encInt32) }

// Float64s is a column of float64 values; NaN and ±Inf are sent as the server writes them.
func Float64s(name string, values ...float64) Column { return column(name, values, encFloat64) }

// Float32s is a column of float32 values.
func Float32s(name string, values ...float32) Column { return column(name, values, encFloat32) }

// Strings is a column of string values.
func Strings(name string, values ...string) Column { return column(name, values, encString) }

// Bools is a column of bool values.
func Bools(name string, values ...bool) Column { return column(name, values, encBool) }

// Bytes is a column of bytes values. The server's JSON push takes bytes as a string, so the
// values must be valid UTF-8 (the call fails before sending otherwise).
func Bytes(name string, values ...[]byte) Column { return column(name, values, encBytes) }

// Times is a column of instants: event and created timestamps, and UnixTimestamp features.
// They are sent as RFC 3339 strings in UTC, truncated to the server's microseconds.
func Times(name string, values ...time.Time) Column { return column(name, values, encTime) }

// Int64Lists is a column of int64 lists (a nil list is null).
func Int64Lists(name string, values ...[]int64) Column { return listColumn(name, values, encInt64) }

// Int32Lists is a column of int32 lists (a nil list is null).
func Int32Lists(name string, values ...[]int32) Column { return listColumn(name, values, encInt32) }

// Float64Lists is a column of float64 lists (a nil list is null).
func Float64Lists(name string, values ...[]float64) Column {
	return listColumn(name, values, encFloat64)
}

// Float32Lists is a column of float32 lists (a nil list is null).
func Float32Lists(name string, values ...[]float32) Column {
	return listColumn(name, values, encFloat32)
}

// StringLists is a column of string lists (a nil list is null).
func StringLists(name string, values ...[]string) Column {
	return listColumn(name, values, encString)
}

// BoolLists is a column of bool lists (a nil list is null).
func BoolLists(name string, values ...[]bool) Column { return listColumn(name, values, encBool) }

// BytesLists is a column of bytes lists (a nil list is null); see Bytes.
func BytesLists(name string, values ...[][]byte) Column {
	return listColumn(name, values, encBytes)
}

// TimeLists is a column of lists of instants (a nil list is null); see Times.
func TimeLists(name string, values ...[]time.Time) Column {
	return listColumn(name, values, encTime)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; without the HTML escaping of encoding/json,
// which the server does not need.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// encodeColumns appends `{"a":[...],"b":[...]}`; every column must have the same length.
func encodeColumns(dst []byte, field string, cols []Column) ([]byte, error) {
	dst = append(dst, '{')
	for i, c := range cols {
		if c.n != cols[0].n {
			return dst, fmt.Errorf("repast: %s column %q has %d rows, column %q has %d", field, c.name, c.n, cols[0].name, cols[0].n)
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, c.name)
		dst = append(dst, ':', '[')
		var err error
		for row := 0; row < c.n; row++ {
			if row > 0 {
				dst = append(dst, ',')
			}
			if dst, err = c.appendValue(dst, row); err != nil {
				return dst, fmt.Errorf("repast: %s column %q row %d: %w", field, c.name, row, err)
			}
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}
