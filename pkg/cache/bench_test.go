package cache

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// chatBody is a ~6 KB chat request with keys out of order, as SDKs send
// them.
func chatBody() []byte {
	var b strings.Builder
	b.WriteString(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."}`)
	for i := 0; b.Len() < 6<<10; i++ {
		fmt.Fprintf(&b, `,{"role":"user","content":"Question %d: what is the capital of country number %d? \u00e9\n"},{"content":"It is city %d.","role":"assistant"}`, i, i, i)
	}
	b.WriteString(`],"temperature":0.2,"max_tokens":512,"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"number"}}}}}]}`)
	return []byte(b.String())
}

func BenchmarkCanonical(b *testing.B) {
	body := chatBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKey(b *testing.B) {
	canon, err := Canonical(chatBody())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(canon)))
	b.ReportAllocs()
	for b.Loop() {
		Key("dev", "project:ml", "POST", "/v1/chat/completions", canon)
	}
}

// BenchmarkEntry compares the binary encoding with encoding/json of the
// same Entry, for a 6 KB body and a 200-event stream.
func BenchmarkEntry(b *testing.B) {
	json6k := testEntry(false)
	json6k.Body = []byte(strings.Repeat(`{"content":"word word word"},`, 6<<10/29))
	for _, tc := range []struct {
		name string
		e    *Entry
	}{{"json6k", json6k}, {"stream200", testEntry(true)}} {
		enc := encodeEntry(tc.e, testNow)
		js, err := json.Marshal(tc.e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("Encode/"+tc.name, func(b *testing.B) {
			b.ReportMetric(float64(len(enc)), "bytes")
			b.ReportAllocs()
			for b.Loop() {
				encodeEntry(tc.e, testNow)
			}
		})
		b.Run("Decode/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeEntry(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("EncodeJSON/"+tc.name, func(b *testing.B) {
			b.ReportMetric(float64(len(js)), "bytes")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(tc.e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("DecodeJSON/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e Entry
				if err := json.Unmarshal(js, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
