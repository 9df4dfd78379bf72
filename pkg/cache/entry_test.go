package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"reflect"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/money"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 987654321, time.UTC)

func testEntry(stream bool) *Entry {
	e := &Entry{
		Key:         Key("dev", "project:ml", "POST", "/v1/chat/completions", []byte(`{"a":1}`)),
		Scope:       "project:ml",
		Status:      200,
		ContentType: "application/json",
		Usage: meter.Usage{
			InputTokens: 1200, CachedInputTokens: 1024, AudioInputTokens: 3, CachedAudioInputTokens: 2,
			ImageInputTokens: 5, OutputTokens: 900, ReasoningTokens: 700, AudioOutputTokens: 7, ImageOutputTokens: 11,
		},
		Model:       "gpt-4o-2024-08-06",
		ServiceTier: "flex",
		Cost:        money.Nanos(1_234_567_890_123),
		Created:     time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
	}
	if stream {
		e.Stream = true
		e.ContentType = "text/event-stream"
		for i := range 200 {
			e.Events = append(e.Events, fmt.Appendf(nil, "data: {\"i\":%d}\n\n", i))
		}
		e.Events = append(e.Events, []byte("data: [DONE]\r\n\r\n"))
	} else {
		e.Body = []byte(`{"id":"x","choices":[]}`)
	}
	return e
}

func TestEntryRoundTrip(t *testing.T) {
	negative := testEntry(false)
	negative.Cost = -5
	negative.Usage.InputTokens = -1
	utf := testEntry(true)
	utf.Scope, utf.Model = "user:al\x00ice\n", "\xff"
	utf.Events = [][]byte{{}, []byte("\x00"), nil}
	tests := map[string]*Entry{
		"non-stream": testEntry(false),
		"stream":     testEntry(true),
		"negative":   negative,
		"odd bytes":  utf,
		"local time": func() *Entry {
			e := testEntry(false)
			e.Created = e.Created.In(time.FixedZone("X", 3600))
			return e
		}(),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			b := encodeEntry(e, testNow)
			got, err := decodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Created.Equal(e.Created) || got.Created.Location() != time.UTC {
				t.Fatalf("Created %v, want %v in UTC", got.Created, e.Created)
			}
			want := *e
			want.Created = got.Created
			for i, ev := range want.Events {
				if len(ev) == 0 {
					want.Events[i] = got.Events[i] // nil and empty are the same bytes
				}
			}
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestEntryZeroCreatedIsNow(t *testing.T) {
	e := testEntry(false)
	e.Created = time.Time{}
	got, err := decodeEntry(encodeEntry(e, testNow))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Created.Equal(testNow) {
		t.Fatalf("Created = %v, want %v", got.Created, testNow)
	}
	if !e.Created.IsZero() {
		t.Fatal("encodeEntry modified the entry")
	}
}

// TestEntryAliasing: decoded fields point into the buffer but are capped,
// so appending to one never overwrites the next.
func TestEntryAliasing(t *testing.T) {
	got, err := decodeEntry(encodeEntry(testEntry(true), testNow))
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.Clone(got.Events[1])
	_ = append(got.Events[0], "XXXXXXXXXXXXXXXXXXXX"...)
	if !bytes.Equal(got.Events[1], second) {
		t.Fatalf("appending to event 0 changed event 1: %q", got.Events[1])
	}
}

func TestEntryCorrupt(t *testing.T) {
	good := encodeEntry(testEntry(true), testNow)
	// Every truncation and every single-bit flip is detected.
	for n := range len(good) {
		if _, err := decodeEntry(bytes.Clone(good[:n])); err != errCorrupt {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	for i := range len(good) {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			if _, err := decodeEntry(b); err != errCorrupt {
				t.Fatalf("bit %d of byte %d flipped: %v", bit, i, err)
			}
		}
	}
	// Structurally wrong bodies behind a valid checksum.
	withSum := func(s string) []byte {
		return binary.LittleEndian.AppendUint32([]byte(s), crc32.Checksum([]byte(s), castagnoli))
	}
	tests := map[string][]byte{
		"other version":       withSum("wRc\x02\x00"),
		"unknown flag":        withSum("wRc\x01\x04\xc8\x01"),
		"status out of range": withSum("wRc\x01\x00\xe8\x07"),
		"string past the end": withSum("wRc\x01\x00\xc8\x01\x7f"),
		"event count huge":    withSum("wRc\x01\x00\xc8\x01\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + "\x00\xff\xff\xff\xff\x0f"),
		"overlong varint":     withSum("wRc\x01\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
	}
	for name, b := range tests {
		if _, err := decodeEntry(b); err != errCorrupt {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
}
