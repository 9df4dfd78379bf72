package integration

import (
	"testing"
	"time"
)

func TestSmokeEnv(t *testing.T) {
	e := env(t)
	m := e.Memcached(t)
	p := e.Proxy(t, proxyConfig{Stage: "dev", Memcached: m.Inner, UpstreamTimeout: 3 * time.Second})
	t.Log(e.Kind(), e.DynamoDB(), e.Upstream(), m.Addr, m.Inner, p.BaseURL)
	t.Log(p.admin(t, "keys", "create", "--user", "carol"))
}
