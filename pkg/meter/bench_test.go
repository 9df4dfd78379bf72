package meter

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// chatStream builds a realistic chat/completions stream of n events: a role
// chunk, n-3 one-word content chunks, the finish chunk and the
// include_usage chunk (each with "usage":null and obfuscation, as OpenAI
// sends them), then [DONE].
func chatStream(n int) []byte {
	var b bytes.Buffer
	const head = `data: {"id":"chatcmpl-D1wx5Yb8Vq3Lm7Np2Kr9Ts4Uv6W","object":"chat.completion.chunk","created":1761898800,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[`
	b.WriteString(head + `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"aB3d"}` + "\n\n")
	for i := 0; i < n-4; i++ {
		fmt.Fprintf(&b, head+`{"index":0,"delta":{"content":" word%d"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Q7x"}`+"\n\n", i)
	}
	b.WriteString(head + `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"k0O"}` + "\n\n")
	b.WriteString(head + `],"usage":{"prompt_tokens":1200,"completion_tokens":196,"total_tokens":1396,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"t9"}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// reads hands out the input in network-sized pieces, as a response body
// does.
type reads struct {
	b    []byte
	size int
}

func (r *reads) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func BenchmarkScanObserveChat200(b *testing.B) {
	in := chatStream(200)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(&reads{b: in, size: 1400})
		st := NewStream("chat/completions")
		for {
			e, err := s.Next()
			if err != nil {
				break
			}
			st.Observe(e)
			if IsUsageOnlyChunk(e) {
				continue
			}
		}
		if r := st.Result(); !r.Found || r.Usage.OutputTokens != 196 {
			b.Fatalf("result %+v", r)
		}
	}
}

func BenchmarkScanChat200(b *testing.B) {
	in := chatStream(200)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		s := NewScanner(&reads{b: in, size: 1400})
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkFromJSONChat(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-x","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		string(bytes.Repeat([]byte("lorem ipsum "), 500)) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":1500,"total_tokens":2617,` +
		`"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}},"service_tier":"default"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if r, err := FromJSON("chat/completions", body); err != nil || !r.Found {
			b.Fatal(r, err)
		}
	}
}

// An embeddings batch: 64 inputs of 1536 floats, about 1.2 MB of numbers
// the walker must skip.
func BenchmarkFromJSONEmbeddings(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"object":"list","data":[`)
	for i := 0; i < 64; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"object":"embedding","index":%d,"embedding":[`, i)
		for j := 0; j < 1536; j++ {
			if j > 0 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, "%.9f", float64((i*1536+j)%1000-500)/12345.0)
		}
		buf.WriteString(`]}`)
	}
	buf.WriteString(`],"model":"text-embedding-3-small","usage":{"prompt_tokens":5120,"total_tokens":5120}}`)
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if r, err := FromJSON("embeddings", body); err != nil || r.Usage.InputTokens != 5120 {
			b.Fatal(r, err)
		}
	}
}
