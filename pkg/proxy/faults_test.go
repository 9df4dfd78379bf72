package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
)

// A stream the upstream cuts mid-way reaches the client as a terminated
// stream; the call is billed on an estimate (marked so), never above its
// reservation, and the reservation is settled, not leaked.
func TestCutStreamIsEstimatedAndSettled(t *testing.T) {
	e := newEnv(t, nil)
	setLimit(t, e, "N/A", "1")
	c := cassette(t, "chat-stream")
	req := withFields(t, c.Request, map[string]any{"stream": true})
	hr, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", bytes.NewReader(req))
	hr.Header.Set("X-Openaitest-Fault", "cut:3")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The proxy aborts the client's response too, so the SDK sees an
	// error instead of a stream that merely looks short.
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("client read error %v, want an aborted stream (unexpected EOF)", err)
	}
	if want := concat(c.Events[:3]); resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("client got %d %q, want the 3 events sent before the cut", resp.StatusCode, body)
	}
	r := e.onlyRecord()
	if !r.Estimated || r.ErrorCode != "upstream_cut" || r.Usage.OutputTokens != 3 || r.Cost <= 0 || r.Cost > r.Reserved {
		t.Errorf("record = %+v; want an estimate of 3 output tokens within the reservation", r)
	}
	if held, _ := e.st.Reservations(context.Background()); len(held) != 0 {
		t.Errorf("reservation leaked: %+v", held)
	}
	if got := committed(t, e, "N/A"); got != r.Cost {
		t.Errorf("committed %s, want the estimated cost %s", got, r.Cost)
	}
}

// A client that goes away mid-stream does not lose the bill: the proxy
// keeps reading the upstream to its usage chunk and records real usage.
func TestClientDisconnectStillRecordsRealUsage(t *testing.T) {
	e := newEnv(t, nil)
	c := cassette(t, "chat-stream")
	req := withFields(t, c.Request, map[string]any{"stream": true})
	ctx, cancel := context.WithCancel(context.Background())
	hr, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/v1/chat/completions", bytes.NewReader(req))
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Openaitest-Fault", "slow:30ms")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel() // the client vanishes after the first event
	resp.Body.Close()
	r := e.onlyRecord()
	if r.Estimated || r.Cost != costChatStream || r.Usage != c.Usage {
		t.Errorf("record = %+v; want the real usage (cost %s) read after the client left", r, costChatStream)
	}
}

func TestBudgetRemainingHeader(t *testing.T) {
	e := newEnv(t, nil)
	setLimit(t, e, "N/A", "1")
	c := cassette(t, "chat")
	req := withFields(t, c.Request, map[string]any{"max_completion_tokens": 100})
	status, hdr, _ := e.post("/v1/chat/completions", req, nil)
	if status != 200 {
		t.Fatal(status)
	}
	vals := hdr.Values(proxy.HeaderRemaining)
	if len(vals) != 1 {
		t.Fatalf("%s = %q, want one value", proxy.HeaderRemaining, vals)
	}
	left, err := money.Parse(vals[0])
	if err != nil || left <= 0 || left >= money.USD {
		t.Fatalf("remaining %q: want the limit minus the reservation", vals[0])
	}
	r := e.onlyRecord()
	if left != money.USD-r.Reserved {
		t.Errorf("remaining %s, want 1 - reserved %s", left, r.Reserved)
	}
}
