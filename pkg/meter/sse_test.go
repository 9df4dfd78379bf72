package meter

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ev is an Event with comparable fields; Data "<nil>" means no data field.
type ev struct{ Name, Data, Raw string }

func toEv(e Event) ev {
	d := "<nil>"
	if e.Data != nil {
		d = string(e.Data)
	}
	return ev{e.Name, d, string(e.Raw)}
}

// scanAll reads every event from r, copying them (Raw and Data are only
// valid until the next call).
func scanAll(t testing.TB, r io.Reader, max int) ([]ev, error) {
	t.Helper()
	s := NewScanner(r)
	s.SetMaxEventSize(max)
	var out []ev
	for {
		e, err := s.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, toEv(e))
		if len(out) > 1<<20 {
			t.Fatal("scanner does not terminate")
		}
	}
}

// chunkReader returns its chunks one Read at a time, then err (io.EOF if
// nil).
type chunkReader struct {
	chunks [][]byte
	err    error
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		if r.err == nil {
			return 0, io.EOF
		}
		return 0, r.err
	}
	n := copy(p, r.chunks[0])
	if n == len(r.chunks[0]) {
		r.chunks = r.chunks[1:]
	} else {
		r.chunks[0] = r.chunks[0][n:]
	}
	return n, nil
}

// byteReader returns one byte per Read, the worst split there is.
func byteReader(b []byte) io.Reader {
	r := &chunkReader{}
	for i := range b {
		r.chunks = append(r.chunks, b[i:i+1])
	}
	return r
}

func TestScannerEvents(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ev
	}{
		{"empty", "", nil},
		{"one LF event", "data: {\"a\":1}\n\n", []ev{{"", `{"a":1}`, "data: {\"a\":1}\n\n"}}},
		{"named event", "event: response.created\ndata: {}\n\n",
			[]ev{{"response.created", "{}", "event: response.created\ndata: {}\n\n"}}},
		{"CRLF", "event: a\r\ndata: x\r\n\r\ndata: y\r\n\r\n",
			[]ev{{"a", "x", "event: a\r\ndata: x\r\n\r\n"}, {"", "y", "data: y\r\n\r\n"}}},
		{"CR only", "data: x\r\rdata: y\r\r",
			[]ev{{"", "x", "data: x\r\r"}, {"", "y", "data: y\r\r"}}},
		{"mixed endings", "data: a\r\n\ndata: b\n\r\ndata: c\r\r\n",
			[]ev{{"", "a", "data: a\r\n\n"}, {"", "b", "data: b\n\r\n"}, {"", "c", "data: c\r\r\n"}}},
		{"multi-line data", "data: one\ndata:two\ndata:\ndata:  three\n\n",
			[]ev{{"", "one\ntwo\n\n three", "data: one\ndata:two\ndata:\ndata:  three\n\n"}}},
		{"comment only event is returned", ": keep-alive\n\ndata: x\n\n",
			[]ev{{"", "<nil>", ": keep-alive\n\n"}, {"", "x", "data: x\n\n"}}},
		{"comment inside event", "data: a\n: note\ndata: b\n\n",
			[]ev{{"", "a\nb", "data: a\n: note\ndata: b\n\n"}}},
		{"last event name wins, other fields ignored", "id: 7\nretry: 10\nevent: a\nevent: b\nfoo: bar\ndata\n\n",
			[]ev{{"b", "", "id: 7\nretry: 10\nevent: a\nevent: b\nfoo: bar\ndata\n\n"}}},
		{"no space after colon, only one space removed", "event:x\ndata:  y\n\n",
			[]ev{{"x", " y", "event:x\ndata:  y\n\n"}}},
		{"leading blank lines are events", "\n\r\ndata: x\n\n",
			[]ev{{"", "<nil>", "\n"}, {"", "<nil>", "\r\n"}, {"", "x", "data: x\n\n"}}},
		{"final event without blank line", "data: a\n\ndata: {\"usage\":1}",
			[]ev{{"", "a", "data: a\n\n"}, {"", `{"usage":1}`, "data: {\"usage\":1}"}}},
		{"final event ends with one LF", "data: a\n", []ev{{"", "a", "data: a\n"}}},
		{"final lone CR", "data: a\r", []ev{{"", "a", "data: a\r"}}},
		{"BOM is ignored in fields, kept in Raw", "\xEF\xBB\xBFevent: e\ndata: x\n\n",
			[]ev{{"e", "x", "\xEF\xBB\xBFevent: e\ndata: x\n\n"}}},
		{"BOM-only first line is blank", "\xEF\xBB\xBF\ndata: x\n\n",
			[]ev{{"", "<nil>", "\xEF\xBB\xBF\n"}, {"", "x", "data: x\n\n"}}},
		{"BOM later is data", "data: a\n\n\xEF\xBB\xBFdata: x\n\n",
			[]ev{{"", "a", "data: a\n\n"}, {"", "<nil>", "\xEF\xBB\xBFdata: x\n\n"}}},
		{"DONE", "data: [DONE]\n\n", []ev{{"", "[DONE]", "data: [DONE]\n\n"}}},
		{"field name is case sensitive", "Data: x\nEVENT: y\n\n", []ev{{"", "<nil>", "Data: x\nEVENT: y\n\n"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAll(t, strings.NewReader(tt.in), DefaultMaxEventSize)
			if err != nil {
				t.Fatal(err)
			}
			if !equalEvs(got, tt.want) {
				t.Fatalf("events\n got %q\nwant %q", got, tt.want)
			}
			// Every way of splitting the input into two reads, and one
			// byte per read, gives the same events.
			for i := 0; i <= len(tt.in); i++ {
				r := &chunkReader{chunks: [][]byte{[]byte(tt.in[:i]), []byte(tt.in[i:])}}
				got, err := scanAll(t, r, DefaultMaxEventSize)
				if err != nil || !equalEvs(got, tt.want) {
					t.Fatalf("split at %d: %q, %v", i, got, err)
				}
			}
			got, err = scanAll(t, byteReader([]byte(tt.in)), DefaultMaxEventSize)
			if err != nil || !equalEvs(got, tt.want) {
				t.Fatalf("byte by byte: %q, %v", got, err)
			}
		})
	}
}

func equalEvs(a, b []ev) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func concatRaw(evs []ev) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Raw)
	}
	return b.String()
}

// Every recorded stream: the same events whole or one byte per read, and
// the Raw bytes add up to the input.
func TestScannerRecordedStreamsSplitEveryByte(t *testing.T) {
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		t.Fatalf("no streams: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := scanAll(t, bytes.NewReader(in), DefaultMaxEventSize)
			if err != nil {
				t.Fatal(err)
			}
			if concatRaw(whole) != string(in) {
				t.Fatal("concatenated Raw differs from the input")
			}
			split, err := scanAll(t, byteReader(in), DefaultMaxEventSize)
			if err != nil {
				t.Fatal(err)
			}
			if !equalEvs(whole, split) {
				t.Fatal("events differ when read one byte at a time")
			}
			// Each recorded stream is made of data events, one per
			// JSON document or [DONE]: none was merged or cut.
			for i, e := range whole {
				if e.Data == "<nil>" || (e.Data != "[DONE]" && !strings.HasPrefix(e.Data, "{")) {
					t.Fatalf("event %d has data %.40q", i, e.Data)
				}
			}
		})
	}
}

func TestScannerMaxEventSize(t *testing.T) {
	small := "data: 12345\n\n" // 13 bytes
	t.Run("exactly max is accepted", func(t *testing.T) {
		got, err := scanAll(t, strings.NewReader(small+small), len(small))
		if err != nil || len(got) != 2 {
			t.Fatalf("got %d events, %v", len(got), err)
		}
	})
	t.Run("unterminated final event at max is accepted", func(t *testing.T) {
		got, err := scanAll(t, strings.NewReader(small+"data: 1234567"), len(small))
		if err != nil || len(got) != 2 {
			t.Fatalf("got %d events, %v", len(got), err)
		}
	})
	for _, in := range []string{small + "data: 123456\n\n" + small, small + "data: 12345678"} {
		t.Run("one byte over fails", func(t *testing.T) {
			r := bytes.NewReader([]byte(in))
			s := NewScanner(r)
			s.SetMaxEventSize(len(small))
			var consumed []byte
			for {
				e, err := s.Next()
				if err != nil {
					if !errors.Is(err, ErrEventTooLarge) {
						t.Fatalf("err = %v, want ErrEventTooLarge", err)
					}
					break
				}
				consumed = append(consumed, e.Raw...)
			}
			if string(consumed) != small {
				t.Fatalf("events before the error: %q", consumed)
			}
			// Nothing is lost: what was returned, what is buffered and
			// what is still unread make up the input, so a proxy can
			// fall back to copying.
			rest, _ := io.ReadAll(r)
			all := string(consumed) + string(s.Buffered()) + string(rest)
			if all != in {
				t.Fatalf("lost bytes: %q", all)
			}
			if _, err := s.Next(); !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("error is not sticky: %v", err)
			}
		})
	}
	t.Run("large event grows the buffer", func(t *testing.T) {
		big := "data: " + strings.Repeat("x", 3*initialBufferSize) + "\n\n"
		got, err := scanAll(t, strings.NewReader(big+small), DefaultMaxEventSize)
		if err != nil || len(got) != 2 || got[0].Raw != big {
			t.Fatalf("got %d events, %v", len(got), err)
		}
	})
}

var errBroken = errors.New("connection reset")

func TestScannerReadError(t *testing.T) {
	r := &chunkReader{chunks: [][]byte{[]byte("data: a\n\ndata: b\n\ndata: par")}, err: errBroken}
	s := NewScanner(r)
	for _, want := range []string{"a", "b"} {
		e, err := s.Next()
		if err != nil || string(e.Data) != want {
			t.Fatalf("Next = %q, %v; want %q", e.Data, err, want)
		}
	}
	if _, err := s.Next(); !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want the reader's", err)
	}
	if got := string(s.Buffered()); got != "data: par" {
		t.Fatalf("Buffered = %q", got)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestScannerNoProgress(t *testing.T) {
	if _, err := NewScanner(zeroReader{}).Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("err = %v, want io.ErrNoProgress", err)
	}
}

// blockingReader hands out its chunks, then reports that a Read would
// block: a scanner that reads again before returning a complete event
// would delay that event.
type blockingReader struct {
	chunkReader
	blocked bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		r.blocked = true
		return 0, errors.New("read would block")
	}
	return r.chunkReader.Read(p)
}

func TestScannerDoesNotWaitForMoreInput(t *testing.T) {
	tests := []struct {
		in   string
		want []string // data of the events returned before blocking
	}{
		{"data: a\n\ndata: b\n\n", []string{"a", "b"}},
		{"data: a\r\n\r\ndata: b\n\n", []string{"a", "b"}},
		{"data: a\r\rdata: b\r\n", []string{"a"}},
		{"data: a\n\n: ping\n\ndata: b", []string{"a", "<nil>"}},
		// The documented exception: a CR at the end of what arrived may
		// be half of a CRLF, so the scanner reads once more.
		{"data: a\r\n\r", nil},
		{"data: a\r\r", nil},
	}
	for _, tt := range tests {
		r := &blockingReader{chunkReader: chunkReader{chunks: [][]byte{[]byte(tt.in)}}}
		s := NewScanner(r)
		var got []string
		for {
			e, err := s.Next()
			if err != nil || r.blocked {
				break
			}
			got = append(got, toEv(e).Data)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: returned %q before blocking, want %q", tt.in, got, tt.want)
		}
	}
}

// The event name is interned but the data is not copied: a single-line
// event's Data and Raw share the scanner's buffer.
func TestScannerDoesNotCopySingleLineData(t *testing.T) {
	s := NewScanner(strings.NewReader("event: x\ndata: abc\n\n"))
	e, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if &e.Data[0] != &e.Raw[len("event: x\ndata: ")] {
		t.Fatal("Data is a copy, not a slice of Raw")
	}
	if cap(e.Data) != len(e.Data) || cap(e.Raw) != len(e.Raw) {
		t.Fatal("Data or Raw can be appended to over the scanner's buffer")
	}
}

func TestScannerReset(t *testing.T) {
	s := NewScanner(strings.NewReader("event: a\ndata: x\ndata: y\n\ndata: partial"))
	s.SetMaxEventSize(64)
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	s.Reset(strings.NewReader("data: z\n\n"))
	e, err := s.Next()
	if err != nil || toEv(e) != (ev{"", "z", "data: z\n\n"}) {
		t.Fatalf("after Reset: %q, %v", toEv(e), err)
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("after Reset: %v, want EOF", err)
	}
	if s.max != 64 {
		t.Fatal("Reset lost the size limit")
	}
}

// Once warm (buffer grown, names interned), scanning allocates nothing.
func TestScannerAllocations(t *testing.T) {
	in, err := os.ReadFile("testdata/responses_stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(in)
	s := NewScanner(r)
	drain := func() {
		for {
			if _, err := s.Next(); err != nil {
				return
			}
		}
	}
	drain() // warm up: buffer and interned names
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(in)
		s.Reset(r)
		drain()
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per stream of %d bytes, want 0 once warm", allocs, len(in))
	}
}
