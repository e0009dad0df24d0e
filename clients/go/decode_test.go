package repast

import (
	"strings"
	"testing"
	"time"
)

// The hand-written decoder on shapes the server's answers do not happen to use today:
// whitespace, escapes in names and values, nested lists and objects, unknown keys,
// timestamps with offsets; and malformed bodies fail instead of decoding garbage.
func TestDecodeShapes(t *testing.T) {
	body := ` { "metadata" : { "extra": [1, {"a": "}"}], "feature_names" : ["id", "n\"a\u00e9"] },
	  "status": null,
	  "results" : [
	    {"values": [ 7 , -1.5e3 ], "statuses": ["PRESENT","NOT_FOUND"],
	     "event_timestamps": ["1970-01-01T00:00:00Z", "2024-01-01T12:00:00+02:00"]},
	    {"event_timestamps": ["2024-02-29T23:59:59.123456789Z", "2024-01-01T00:00:00.5Z"],
	     "values": [ "x\"]\\" , [[1, "]"], {"k": [2]}] ], "statuses": ["OUTSIDE_MAX_AGE", "PRESENT"]}
	  ] } `
	r, err := decodeOnlineResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.FeatureNames[1] != "n\"aé" || r.Column("n\"aé") == nil {
		t.Fatalf("names %q", r.FeatureNames)
	}
	id, c := r.Columns[0], r.Columns[1]
	if string(id.Raw(1)) != "-1.5e3" || string(c.Raw(0)) != `"x\"]\\"` || string(c.Raw(1)) != `[[1, "]"], {"k": [2]}]` {
		t.Errorf("raw values %s %s %s", id.Raw(1), c.Raw(0), c.Raw(1))
	}
	if s, err := c.Strings(); err == nil {
		t.Errorf("a list read as strings: %q", s)
	}
	if c.Statuses[0] != StatusOutsideMaxAge || id.Statuses[1] != StatusNotFound {
		t.Errorf("statuses %v %v", id.Statuses, c.Statuses)
	}
	want := []time.Time{
		time.Unix(0, 0), time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 5e8, time.UTC),
	}
	got := append(append([]time.Time{}, id.EventTimestamps...), c.EventTimestamps...)
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("event time %d: %v, want %v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{
		``, `{`, `[]`, `{"results": [{"values": [1}]}`, `{"results": [], "metadata": {"feature_names": ["a"]}}`,
		`{"results": [{"values": [1], "statuses": ["WHAT"], "event_timestamps": ["1970-01-01T00:00:00Z"]}], "metadata": {"feature_names": ["a"]}}`,
		`{"results": [{"values": [1], "statuses": ["PRESENT"], "event_timestamps": ["2024-02-30T00:00:00Z"]}], "metadata": {"feature_names": ["a"]}}`,
		`{"results": [{"values": [1, 2], "statuses": ["PRESENT"], "event_timestamps": ["1970-01-01T00:00:00Z"]}], "metadata": {"feature_names": ["a"]}}`,
		`{"results": []} x`, `{"results": ["abc]}`,
	} {
		if _, err := decodeOnlineResponse([]byte(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
