package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/lru"
	"github.com/wrapi-dev/wrapi/pkg/identity"
	"github.com/wrapi-dev/wrapi/pkg/openaitest"
	"github.com/wrapi-dev/wrapi/pkg/proxy"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// BenchmarkCache measures a cache hit against a miss through wrapi with the
// in-process LRU, in the same run: the miss sends a body no earlier call
// sent (a fresh "user" field), so it goes upstream and is stored; the hit
// repeats one body. p50/p99 are reported as metrics.
func BenchmarkCache(b *testing.B) {
	up := openaitest.NewServer()
	defer up.Close()
	st, err := sqlite.Open(context.Background(), b.TempDir()+"/wrapi.db")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	u, _ := url.Parse(up.URL)
	h, err := proxy.New(proxy.Config{Stage: "bench", Upstream: u, APIKey: "k", Store: st, Auth: identity.None{},
		Cache: cache.New(lru.New(lru.Config{}), cache.Options{}), CacheDefault: true})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c, _ := openaitest.Load("chat")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	call := func(body []byte, want string) time.Duration {
		t0 := time.Now()
		resp, err := client.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if got := resp.Header.Get(proxy.HeaderCache); got != want {
			b.Fatalf("x-wrapi-cache %q, want %q", got, want)
		}
		return d
	}
	body := func(i int) []byte {
		return bytes.Replace(c.Request, []byte(`"model"`), []byte(fmt.Sprintf(`"user": "bench-%d", "model"`, i)), 1)
	}
	report := func(b *testing.B, lat []time.Duration) {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-us")
	}
	b.Run("miss", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			lat = append(lat, call(body(i), proxy.CacheMiss))
		}
		h.Wait()
		report(b, lat)
	})
	hot := body(-1)
	call(hot, proxy.CacheMiss)
	h.Wait()
	b.Run("hit", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			lat = append(lat, call(hot, proxy.CacheHit))
		}
		h.Wait()
		report(b, lat)
	})
}
