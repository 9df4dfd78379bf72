package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/wrapi-dev/wrapi/functions/furl"
	"github.com/wrapi-dev/wrapi/functions/stage"
	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/dynamocache"
	"github.com/wrapi-dev/wrapi/pkg/cache/memcached"
	"github.com/wrapi-dev/wrapi/pkg/client"
	"github.com/wrapi-dev/wrapi/pkg/dynalitetest"
	"github.com/wrapi-dev/wrapi/pkg/money"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/dynamo"
)

// A target is one way a stage is reached, with everything a scenario
// needs to drive it and to read its bill:
//
//   - function-url: the deployed shape. The client signs with SigV4
//     (pkg/client in Go, the real `wrapi connect` for Node) → a local
//     function URL front (furl.Front: verifies the signature, builds the
//     function URL event with the IAM identity) → stage.ProxyHandler on
//     the DynamoDB store, with memcached or DynamoDB as the cache → the
//     fake OpenAI. Admin commands are the real CLI with --stage, invoking
//     the admin function's Lambda handler behind a SigV4-verifying fake
//     Lambda Invoke endpoint.
//   - container: `wrapi serve` (the container image, or the binary in
//     processes mode) over plain HTTP with a virtual key, on its SQLite
//     store, with memcached as the cache. Admin commands run inside it.
type target struct {
	name    string
	user    string // who the stage bills
	base    string // OPENAI_BASE_URL for the Go SDK and raw requests
	apiKey  string
	http    *http.Client // signs (function-url) or not (container)
	anon    *http.Client // sends the same requests without credentials
	anonKey string       // the API key the anonymous client sends
	// nodeBase/nodeKey are what the npm SDKs get: `wrapi connect` for
	// the function URL, the proxy itself for the container.
	nodeBase, nodeKey string
	// unauthorized is the status of an unsigned or keyless request.
	unauthorized int
	mc           *memcachedSvc
	admin        func(t *testing.T, args ...string) string
	logs         func() string
}

// identities the function URL front knows (connect_test.go has alice, bob).
var operator = identity{"AKIAOPERATORINTEGRAT", "operator/integration/EXAMPLEKEY", "arn:aws:iam::111122223333:user/operator", "operator"}

const (
	stageName     = "dev"
	adminFunction = "wrapi-dev-admin"
	region        = "us-east-1"
	// The proxy's upstream timeout in the scenarios: the hang fault
	// must end in a 504 quickly.
	upstreamTimeout = 3 * time.Second
)

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newFunctionURLTarget builds the deployed stage's request path on the
// environment's DynamoDB, memcached and fake OpenAI. cacheKind is
// "memcached" or "dynamodb".
func newFunctionURLTarget(t *testing.T, e environment, cacheKind string) *target {
	t.Helper()
	ctx := context.Background()
	wrapi, _ := binaries(t)
	db := dynalitetest.Client(e.DynamoDB(), 3)
	suffix := randomSuffix()
	table, cacheTable := "wrapi-it-"+suffix, "wrapi-it-cache-"+suffix
	st, err := dynamo.New(dynamo.Config{Client: db, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(ctx); err != nil {
		t.Fatalf("create table %s: %v", table, err)
	}
	vars := map[string]string{
		"WRAPI_STAGE": stageName, "WRAPI_TABLE": table, "WRAPI_UPSTREAM": e.Upstream(),
		"WRAPI_UPSTREAM_TIMEOUT": upstreamTimeout.String(), "WRAPI_CACHE": cacheKind, "WRAPI_CACHE_DEFAULT": "off",
	}
	tg := &target{name: "function-url+" + cacheKind, user: alice.user, unauthorized: http.StatusForbidden}
	var backend cache.Backend
	switch cacheKind {
	case "memcached":
		tg.mc = e.Memcached(t)
		vars["WRAPI_MEMCACHED_ADDR"] = tg.mc.Addr
		if backend, err = memcached.New(memcached.Config{Servers: []string{tg.mc.Addr}}); err != nil {
			t.Fatal(err)
		}
	case "dynamodb":
		vars["WRAPI_CACHE_TABLE"] = cacheTable
		// Same key schema as the store's table (functions/README.md).
		ct, _ := dynamo.New(dynamo.Config{Client: db, Table: cacheTable})
		if err := ct.CreateTable(ctx); err != nil {
			t.Fatalf("create table %s: %v", cacheTable, err)
		}
		if backend, err = dynamocache.New(dynamocache.Config{Client: db, Table: cacheTable}); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("cache %q", cacheKind)
	}
	cfg, err := stage.FromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	// What stage.Open builds from the environment on Lambda, with the
	// emulators' clients instead of AWS's.
	deps := stage.Deps{Store: st, Cache: cache.New(backend, cache.Options{Namespace: cfg.Stage})}
	deps.Credentials.APIKey = upstreamKey // from Secrets Manager when deployed
	h, err := cfg.ProxyHandler(deps, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	front, err := furl.NewFront(furl.FrontConfig{Handler: h, Region: region, Credentials: map[string]furl.Credential{
		alice.akid: {Secret: alice.secret, ARN: alice.arn},
		bob.akid:   {Secret: bob.secret, ARN: bob.arn},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)

	// The admin function: its Lambda handler (JSON in, JSON out, as
	// lambda.Start runs it) behind the Lambda Invoke API, which only the
	// operator's key may call.
	invoke := lambda.NewHandler(stage.AdminHandler(cfg.Admin(deps)))
	adminFront, err := furl.NewFront(furl.FrontConfig{Region: region,
		Credentials: map[string]furl.Credential{operator.akid: {Secret: operator.secret, ARN: operator.arn}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/"+adminFunction+"/invocations" {
				w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprintf(w, `{"Type":"User","message":"Function not found: %s"}`, r.URL.Path)
				return
			}
			payload, _ := io.ReadAll(r.Body)
			out, err := invoke.Invoke(r.Context(), payload)
			if err != nil {
				w.Header().Set("X-Amz-Function-Error", "Unhandled")
				fmt.Fprintf(w, `{"errorMessage":%q,"errorType":"Error"}`, err.Error())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(out)
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	adminSrv := httptest.NewServer(adminFront)
	t.Cleanup(adminSrv.Close)
	adminEnv := append(awsEnv(t, operator), "AWS_ENDPOINT_URL_LAMBDA="+adminSrv.URL)
	tg.admin = func(t *testing.T, args ...string) string {
		t.Helper()
		return runCLI(t, wrapi, adminEnv, append(args, "--stage", stageName, "--admin-function", adminFunction, "--region", region)...)
	}
	tg.logs = func() string { return "" }

	creds := credentials.NewStaticCredentialsProvider(alice.akid, alice.secret, "")
	tg.base, tg.apiKey = srv.URL+"/v1", "unused"
	tg.http = &http.Client{Transport: client.New(client.Config{URL: srv.URL, Region: region, Credentials: creds})}
	tg.anon, tg.anonKey = &http.Client{}, "unused"
	// The npm SDKs go through the real sidecar, as users run them.
	tg.nodeBase = startConnect(t, wrapi, awsEnv(t, alice), "--url", srv.URL, "--stage", stageName)
	tg.nodeKey = "unused"
	setupLimits(t, tg)
	return tg
}

// newContainerTarget runs `wrapi serve` (the image, or the binary in
// processes mode) with memcached, and issues carol a virtual key.
func newContainerTarget(t *testing.T, e environment) *target {
	t.Helper()
	mc := e.Memcached(t)
	p := e.Proxy(t, proxyConfig{Stage: stageName, Memcached: mc.Inner, UpstreamTimeout: upstreamTimeout})
	tg := &target{name: "container", user: "carol", unauthorized: http.StatusUnauthorized, mc: mc,
		admin: p.admin, logs: p.logs, base: p.BaseURL, http: &http.Client{}, anon: &http.Client{}, anonKey: ""}
	out := tg.admin(t, "keys", "create", "--user", "carol")
	m := regexp.MustCompile(`sk-wrapi-[A-Za-z0-9]+`).FindString(out)
	if m == "" {
		t.Fatalf("keys create printed no key:\n%s", out)
	}
	tg.apiKey, tg.nodeBase, tg.nodeKey = m, p.BaseURL, m
	setupLimits(t, tg)
	return tg
}

// setupLimits: deployed stages refuse requests no limit covers; one
// generous monthly limit covers every project.
func setupLimits(t *testing.T, tg *target) {
	t.Helper()
	tg.admin(t, "limits", "set", "--project", "*", "--usd", "100", "--period", "month")
}

// sdk is an openai-go client of the target billing project.
func (tg *target) sdk(project string, retries int, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(tg.base), option.WithAPIKey(tg.apiKey), option.WithHTTPClient(tg.http),
		option.WithHeader("openai-proxy-project", project), option.WithMaxRetries(retries),
	}, opts...)...)
}

// post sends a raw request through the target's client (signed, or with
// the virtual key) and returns the response with its whole body.
func (tg *target) post(t *testing.T, path, project string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	return doRaw(t, tg.http, tg.base+path, tg.apiKey, project, body, headers)
}

func doRaw(t *testing.T, c *http.Client, url, key, project string, body []byte, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := doRawErr(t, c, url, key, project, body, headers)
	if err != nil {
		t.Fatalf("POST %s: reading the body: %v", url, err)
	}
	return resp, b
}

// doRawErr is doRaw that returns a body read error (a cut stream) with
// what was read before it.
func doRawErr(t *testing.T, c *http.Client, url, key, project string, body []byte, headers map[string]string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if project != "" {
		req.Header.Set("openai-proxy-project", project)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// report is `wrapi usage --json` (with the limits it prints).
type report struct {
	admin.Report
	Limits []struct {
		Scope struct {
			Project string `json:"project"`
		} `json:"scope"`
		Amount    money.Nanos `json:"usd"`
		Committed money.Nanos `json:"committed_usd"`
	} `json:"limits"`
}

// usage reads the bill through the admin command, grouped by.
func (tg *target) usage(t *testing.T, by string, filter ...string) report {
	t.Helper()
	out := tg.admin(t, append([]string{"usage", "--by", by, "--json"}, filter...)...)
	var r report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("usage --json: %v\n%s", err, out)
	}
	return r
}

// projectRow is one project's totals (zero row if it has none).
func (tg *target) projectRow(t *testing.T, project string) store.UsageRow {
	t.Helper()
	return tg.usage(t, "project", "--project", project).Total
}

// reservations lists the reservations still held.
func (tg *target) reservations(t *testing.T) []store.Reservation {
	t.Helper()
	out := tg.admin(t, "reservations", "--json")
	var rs []store.Reservation
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("reservations --json: %v\n%s", err, out)
	}
	return rs
}

// eventually retries check until it passes or 15 s have gone by (the
// function URL settles synchronously, but the response may reach the
// client before the record is written).
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %v", what, err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
