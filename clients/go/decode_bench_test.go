package repast

import (
	"fmt"
	"strings"
	"testing"
)

// The client's work for a 1 x 50 answer without the network: encoding the request and
// decoding the answer (the body the server writes for the benchmark's wide view).
func BenchmarkEncodeDecode1x50(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"results":[{"values":[1001],"statuses":["PRESENT"],"event_timestamps":["1970-01-01T00:00:00Z"]}`)
	names := []string{`"driver_id"`}
	features := make([]string, 50)
	for i := 0; i < 50; i++ {
		value := []string{"1001000", "251.25", "252.25", `"value-3-1001"`, "1001004", "true"}[i%6]
		fmt.Fprintf(&sb, `,{"values":[%s],"statuses":["PRESENT"],"event_timestamps":["2024-01-01T12:00:00Z"]}`, value)
		names = append(names, fmt.Sprintf(`"w%02d"`, i))
		features[i] = fmt.Sprintf("wide:w%02d", i)
	}
	fmt.Fprintf(&sb, `],"metadata":{"feature_names":[%s]}}`, strings.Join(names, ","))
	body := []byte(sb.String())
	entities := []Column{Int64s("driver_id", 1001)}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req, err := encodeColumns(make([]byte, 0, 1024), "entities", entities)
		if err != nil || len(req) == 0 {
			b.Fatal(err)
		}
		for _, f := range features {
			req = appendJSONString(req, f)
		}
		if _, err := decodeOnlineResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}
