package meter

import (
	"bytes"
	"errors"
	"io"
)

// DefaultMaxEventSize is the largest event a Scanner accepts unless told
// otherwise. OpenAI's largest events are Responses API terminal events that
// repeat the whole output, and streamed partial images (base64, ~1-3 MB).
const DefaultMaxEventSize = 4 << 20

// ErrEventTooLarge is returned by [Scanner.Next] when an event grows past the
// scanner's maximum size without being terminated.
var ErrEventTooLarge = errors.New("meter: server-sent event exceeds the size limit")

const (
	initialBufferSize = 4 << 10
	// Like bufio.Scanner: a reader that keeps returning nothing is broken.
	maxEmptyReads = 100
	// Event names are few ("response.output_text.delta", …); interning them
	// saves an allocation per event. The cap bounds what a hostile stream
	// can make us keep.
	maxInternedNames = 64
)

var utf8BOM = []byte("\xEF\xBB\xBF")

// Event is one server-sent event exactly as received.
//
// Data and Raw point into the [Scanner]'s buffer and are valid only until
// the next call to [Scanner.Next]; copy them to keep them longer.
type Event struct {
	// Name is the value of the last "event:" field, "" if none.
	Name string
	// Data is the value of the "data:" fields joined with "\n", as the SSE
	// specification builds it; nil if the event has no data field.
	Data []byte
	// Raw is the exact bytes of the event, comments and the terminating
	// blank line included, so that concatenating every Raw a Scanner
	// returns reproduces its input.
	Raw []byte
}

// Scanner splits a stream into server-sent events as they arrive.
//
// It returns an event as soon as its terminating blank line is buffered,
// without reading further, with one exception: when the last byte buffered
// is a CR that may end the event, the Scanner reads once more to learn
// whether an LF follows (CRLF is one line ending). That keeps the events
// and their Raw bytes identical however the input is split into reads; in
// practice the LF is in the same network packet.
//
// It accepts LF, CRLF and CR line endings, comment lines (kept in Raw; an
// event made only of comments is still returned so it can be forwarded),
// multi-line data, and a final event not followed by a blank line at end of
// input. A leading UTF-8 byte order mark is kept in Raw and ignored when
// reading fields. Fields other than "event" and "data" are kept in Raw only.
type Scanner struct {
	r   io.Reader
	max int

	buf []byte
	// buf[start:end] is read but not yet returned: start is the first byte
	// of the current event, pos the first byte not yet split into lines,
	// and buf[pos:scanned] is known to hold no CR or LF.
	start, pos, scanned, end int

	err      error // the reader's error, reported once the buffer is drained
	tooLarge bool  // sticky ErrEventTooLarge
	started  bool  // the first line of the stream was read (BOM handling)

	// The current event's fields, as offsets from start so that moving
	// the buffer does not invalidate them.
	hasName          bool
	nameOff, nameLen int
	dataLines        int
	dataOff, dataLen int
	data             []byte // Data of a multi-line event, reused
	names            map[string]string
}

// NewScanner returns a Scanner reading r, with [DefaultMaxEventSize].
func NewScanner(r io.Reader) *Scanner {
	return &Scanner{r: r, max: DefaultMaxEventSize}
}

// Reset makes s read r from the start, keeping its buffer and settings, so
// a pool of Scanners spares each stream the allocations.
func (s *Scanner) Reset(r io.Reader) {
	s.r, s.err, s.tooLarge, s.started = r, nil, false, false
	s.start, s.pos, s.scanned, s.end = 0, 0, 0, 0
	s.hasName, s.dataLines = false, 0
}

// SetMaxEventSize sets the largest event (Raw length) Next accepts; larger
// events fail with [ErrEventTooLarge]. Call it before the first Next.
// n < 1 is ignored.
func (s *Scanner) SetMaxEventSize(n int) {
	if n > 0 {
		s.max = n
	}
}

// Buffered returns the bytes read from the underlying reader and not yet
// returned in an event. After an error from Next, the proxy can forward
// them and copy the rest of the stream unparsed.
func (s *Scanner) Buffered() []byte { return s.buf[s.start:s.end] }

// Next returns the next event. At the end of input it returns io.EOF; a
// read error is returned once the complete events before it are.
func (s *Scanner) Next() (Event, error) {
	empty := 0
	for {
		if s.tooLarge {
			return Event{}, ErrEventTooLarge
		}
		if ev, ok := s.scan(); ok {
			return ev, nil
		}
		if s.tooLarge || s.end-s.start > s.max {
			s.tooLarge = true
			return Event{}, ErrEventTooLarge
		}
		if s.err != nil {
			if s.err == io.EOF && s.start < s.end {
				// The input ended inside an event: return what came so
				// it is forwarded and, if it is whole, metered.
				if s.pos < s.end {
					s.field(s.pos, s.end)
				}
				s.pos, s.scanned = s.end, s.end
				return s.emit(s.end), nil
			}
			return Event{}, s.err
		}
		if s.fill() > 0 {
			empty = 0
		} else if s.err == nil {
			if empty++; empty >= maxEmptyReads {
				s.err = io.ErrNoProgress
			}
		}
	}
}

// scan splits buffered bytes into lines until a blank line ends the event.
func (s *Scanner) scan() (Event, bool) {
	for {
		rest := s.buf[s.scanned:s.end]
		lf := bytes.IndexByte(rest, '\n')
		line := rest
		if lf >= 0 {
			line = rest[:lf]
		}
		eol, size := lf, 1
		if cr := bytes.IndexByte(line, '\r'); cr >= 0 {
			eol = cr
			switch {
			case cr+1 < len(rest):
				if rest[cr+1] == '\n' {
					size = 2
				}
			case s.err == nil:
				// A CR at the end of the buffer: CRLF or CR? Wait
				// for the next byte rather than split a CRLF.
				s.scanned += cr
				return Event{}, false
			}
		}
		if eol < 0 {
			s.scanned = s.end
			return Event{}, false
		}
		lineEnd := s.scanned + eol
		next := lineEnd + size
		blank := lineEnd == s.pos || (!s.started && bytes.Equal(s.buf[s.pos:lineEnd], utf8BOM))
		if blank && next-s.start > s.max {
			// Leave the event unconsumed so Buffered still has it.
			s.scanned = lineEnd
			s.tooLarge = true
			return Event{}, false
		}
		if !blank {
			s.field(s.pos, lineEnd)
		}
		s.started = true
		s.pos, s.scanned = next, next
		if blank {
			return s.emit(next), true
		}
	}
}

// field records the "event" or "data" field in buf[from:to], a line without
// its ending.
func (s *Scanner) field(from, to int) {
	if !s.started {
		s.started = true
		if bytes.HasPrefix(s.buf[from:to], utf8BOM) {
			from += len(utf8BOM)
		}
	}
	line := s.buf[from:to]
	if len(line) == 0 || line[0] == ':' {
		return
	}
	name, valueOff := line, to
	if colon := bytes.IndexByte(line, ':'); colon >= 0 {
		name, valueOff = line[:colon], from+colon+1
		if valueOff < to && s.buf[valueOff] == ' ' {
			valueOff++
		}
	}
	off, n := valueOff-s.start, to-valueOff
	switch string(name) {
	case "event":
		s.hasName, s.nameOff, s.nameLen = true, off, n
	case "data":
		s.dataLines++
		switch s.dataLines {
		case 1:
			s.dataOff, s.dataLen = off, n
		case 2:
			first := s.buf[s.start+s.dataOff : s.start+s.dataOff+s.dataLen]
			s.data = append(append(append(s.data[:0], first...), '\n'), s.buf[valueOff:to]...)
		default:
			s.data = append(append(s.data, '\n'), s.buf[valueOff:to]...)
		}
	}
}

// emit returns buf[start:end] as an event and starts the next one.
func (s *Scanner) emit(end int) Event {
	raw := s.buf[s.start:end:end]
	ev := Event{Raw: raw}
	if s.hasName {
		ev.Name = s.intern(raw[s.nameOff : s.nameOff+s.nameLen])
	}
	switch s.dataLines {
	case 0:
	case 1:
		ev.Data = raw[s.dataOff : s.dataOff+s.dataLen : s.dataOff+s.dataLen]
	default:
		ev.Data = s.data
	}
	s.start = end
	s.hasName, s.dataLines = false, 0
	return ev
}

func (s *Scanner) intern(b []byte) string {
	if name, ok := s.names[string(b)]; ok {
		return name
	}
	name := string(b)
	if len(s.names) < maxInternedNames {
		if s.names == nil {
			s.names = make(map[string]string)
		}
		s.names[name] = name
	}
	return name
}

// fill reads once into the free space after end, first moving the current
// event to the front or growing the buffer if there is none.
func (s *Scanner) fill() int {
	if s.end == len(s.buf) {
		if s.start > 0 {
			n := copy(s.buf, s.buf[s.start:s.end])
			s.pos -= s.start
			s.scanned -= s.start
			s.start, s.end = 0, n
		}
		if s.end == len(s.buf) {
			// One byte more than max lets Next tell "exactly max" from
			// "too large".
			size := min(max(2*len(s.buf), initialBufferSize), s.max+1)
			nb := make([]byte, size)
			copy(nb, s.buf[:s.end])
			s.buf = nb
		}
	}
	n, err := s.r.Read(s.buf[s.end:])
	if n < 0 || n > len(s.buf)-s.end {
		n, err = 0, errors.New("meter: reader returned an invalid count")
	}
	s.end += n
	if err != nil {
		s.err = err
	}
	return n
}
