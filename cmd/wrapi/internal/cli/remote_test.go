package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/meter"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

const (
	testAKID   = "AKIAWRAPITEST0000001"
	testSecret = "wrapi/test/secret/EXAMPLEKEY"
)

// awsTestEnv gives the SDK's default chain known static credentials and
// nothing else to find (no profiles, no instance metadata).
func awsTestEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": testAKID, "AWS_SECRET_ACCESS_KEY": testSecret, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "XDG_CONFIG_HOME": filepath.Join(dir, "config"),
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_LAMBDA": "",
		"OPENAI_DEFAULT_PROJECT": "", "OPENAI_DEFAULT_STAGING": "", "OPENAI_DEFAULT_CACHING": "",
		"WRAPI_STAGE": "", "WRAPI_STORE": "",
	} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
}

// verifySigV4 recomputes r's signature with the SDK signer from the
// headers it names; it returns why it does not verify, or "".
func verifySigV4(r *http.Request, body []byte, region string) string {
	auth := r.Header.Get("Authorization")
	m := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`).FindStringSubmatch(auth)
	if m == nil {
		return "no SigV4 Authorization: " + auth
	}
	if m[1] != testAKID || m[3] != region || m[4] != "lambda" {
		return "wrong key or scope: " + auth
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || time.Since(at).Abs() > 5*time.Minute {
		return "bad X-Amz-Date"
	}
	sr, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	for _, h := range strings.Split(m[5], ";") {
		switch h {
		case "host", "x-amz-date":
		case "content-length":
			sr.ContentLength = int64(len(body))
		default:
			sr.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		hash = fmt.Sprintf("%x", sha256Sum(body))
	}
	_ = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}, sr, hash, "lambda", region, at)
	if sr.Header.Get("Authorization") != auth {
		return "signature mismatch"
	}
	return ""
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// fakeLambda speaks the Lambda Invoke REST API for one function: it runs
// the real admin.Service on the given store, as the admin function does.
type fakeLambda struct {
	*httptest.Server
	mu       sync.Mutex
	payloads []string
}

func newFakeLambda(t *testing.T, function string, svc *admin.Service) *fakeLambda {
	f := &fakeLambda{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if why := verifySigV4(r, body, "eu-west-1"); why != "" {
			w.Header().Set("X-Amzn-Errortype", "InvalidSignatureException")
			w.WriteHeader(403)
			fmt.Fprintf(w, `{"message":%q}`, why)
			return
		}
		if r.Method != "POST" || r.URL.Path != "/2015-03-31/functions/"+function+"/invocations" {
			w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
			w.WriteHeader(404)
			fmt.Fprintf(w, `{"Type":"User","message":"Function not found: %s"}`, r.URL.Path)
			return
		}
		f.mu.Lock()
		f.payloads = append(f.payloads, string(body))
		f.mu.Unlock()
		var req admin.Request
		if err := json.Unmarshal(body, &req); err != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			fmt.Fprintf(w, `{"errorMessage":%q,"errorType":"UnmarshalTypeError"}`, err.Error())
			return
		}
		out, _ := json.Marshal(svc.Do(r.Context(), req))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.Write(out)
	}))
	t.Cleanup(f.Close)
	return f
}

// flusher adapts the store's cache generations to admin.CacheFlusher,
// as the deployed admin function's cache does.
type flusher struct{ st *sqlite.Store }

func (f flusher) Flush(ctx context.Context, scope string) error {
	g, err := f.st.CacheGenerations(ctx)
	if err != nil {
		return err
	}
	return g.Bump(ctx, scope)
}

// TestAdminCommandsOnDeployedStage runs every admin command twice on the
// same data: on the local store (--store) and through a fake Lambda
// endpoint running the admin service on that store (--stage dev). The
// output must be the same.
func TestAdminCommandsOnDeployedStage(t *testing.T) {
	awsTestEnv(t)
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "wrapi.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := &admin.Service{Store: st, Stage: "dev", Location: time.UTC, Cache: flusher{st}}
	lam := newFakeLambda(t, "wrapi-dev-admin", svc)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", lam.URL)
	if _, err := saveStage("dev", stageEntry{URL: "https://abc.lambda-url.eu-west-1.on.aws", Region: "eu-west-1", AdminFunction: "wrapi-dev-admin"}); err != nil {
		t.Fatal(err)
	}

	// Data: usage on two projects and users, a held reservation.
	day := time.Now().UTC()
	for i, r := range []store.Record{
		{Project: "ml", User: "alice", ModelRequested: "gpt-4o-mini", Status: 200, Cost: 196_050, Usage: meter.Usage{InputTokens: 100, OutputTokens: 20}},
		{Project: "ml", User: "bob", ModelRequested: "gpt-4o-mini", Status: 200, Cost: 103_800, Saved: 5, CacheHit: true},
		{Project: "web", User: "alice", ModelRequested: "text-embedding-3-small", Status: 429},
	} {
		r.ID, r.Time, r.Stage, r.Endpoint, r.ModelServed = fmt.Sprintf("req_%d", i), day, "dev", "chat/completions", r.ModelRequested
		if err := st.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	l, _ := budget.NewLimit(budget.Scope{Stage: "dev", Project: "ml"}, budget.Month, 5_000_000_000)
	st.PutLimit(ctx, l)
	checks := budget.Checks([]budget.Limit{l}, budget.Subject{Stage: "dev", Project: "ml", User: "alice", Model: "gpt-4o-mini"}, day, nil)
	if _, err := st.Reserve(ctx, store.Reservation{ID: "req_inflight", Checks: checks, Amount: 1234, Created: day, Expires: day.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	both := func(args ...string) (string, string) {
		t.Helper()
		lc, lout, lerr := run(t, append(args, "--store", db, "--stage", "dev")...)
		rc, rout, rerr := run(t, append(args, "--stage", "dev")...)
		if lc != rc {
			t.Fatalf("%v: exit %d locally, %d remotely (%s | %s)", args, lc, rc, lerr, rerr)
		}
		if lout != rout {
			t.Errorf("%v: outputs differ\n--store:\n%s\n--stage:\n%s", args, lout, rout)
		}
		return lout, lerr + rerr
	}
	for _, args := range [][]string{
		{"usage", "--by", "project,user,model"},
		{"usage", "--by", "day,project", "--json"},
		{"usage", "--by", "user", "--project", "ml", "--since", day.Format("2006-01-02")},
		{"limits", "list"},
		{"limits", "list", "--json"},
		{"reservations"},
		{"reservations", "--json"},
		{"cache", "stats"},
		{"cache", "stats", "--json"},
	} {
		out, _ := both(args...)
		if strings.TrimSpace(out) == "" {
			t.Errorf("%v printed nothing", args)
		}
	}
	if out, _ := both("usage", "--by", "user", "--json"); !strings.Contains(out, `"cost_usd": "0.00029985"`) || !strings.Contains(out, `"committed_usd"`) {
		t.Errorf("usage --json: %s", out)
	}
	// Mutations, one each way, then the same listing.
	if _, out, _ := run(t, "limits", "set", "--stage", "dev", "--project", "web", "--usd", "2.5", "--period", "day"); !strings.Contains(out, "limit set: 2.50 USD per day for") {
		t.Errorf("remote limits set: %q", out)
	}
	if ls, _ := st.ListLimits(ctx); len(ls) != 2 {
		t.Errorf("the remote limit did not reach the store: %+v", ls)
	}
	both("limits", "list")
	if c, _, errs := run(t, "limits", "set", "--stage", "dev", "--project", "web", "--usd", "5", "--period", "week"); c != 2 || !strings.Contains(errs, "week") {
		t.Errorf("invalid period remotely: exit %d %q (want 2, as locally)", c, errs)
	}
	run(t, "limits", "delete", "--stage", "dev", "--project", "web", "--period", "day")
	if c, _, errs := run(t, "limits", "delete", "--stage", "dev", "--project", "web", "--period", "day"); c != 1 || !strings.Contains(errs, "no day limit") {
		t.Errorf("second remote delete: exit %d %q (want 1 and the local message)", c, errs)
	}
	_, out, _ := run(t, "keys", "create", "--stage", "dev", "--user", "ci-bot", "--project", "ml")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "sk-wrapi-") || !strings.Contains(out, `for user "ci-bot" (project "ml")`) {
		t.Fatalf("remote keys create: %q", out)
	}
	kout, _ := both("keys", "list", "--json")
	var keys []store.Key
	json.Unmarshal([]byte(kout), &keys)
	if len(keys) != 1 || strings.Contains(kout, lines[len(lines)-1]) {
		t.Fatalf("keys list: %s", kout)
	}
	if c, out, _ := run(t, "keys", "revoke", "--stage", "dev", keys[0].ID); c != 0 || out != "revoked "+keys[0].ID+"\n" {
		t.Errorf("remote revoke: %d %q", c, out)
	}
	both("keys", "list")
	gens, _ := st.CacheGenerations(ctx)
	_, before, _ := gens.Get(ctx, "project:ml")
	if c, out, _ := run(t, "cache", "flush", "--stage", "dev", "--project", "ml"); c != 0 || !strings.Contains(out, "cache flushed: project:ml") {
		t.Errorf("remote flush: %d %q", c, out)
	}
	if _, after, _ := gens.Get(ctx, "project:ml"); after == before {
		t.Errorf("the remote flush did not bump project:ml (generation %d)", after)
	}
	if c, out, _ := run(t, "reap", "--stage", "dev"); c != 0 || out != "released 0 expired reservation(s)\n" {
		t.Errorf("remote reap: %d %q", c, out)
	}

	// What went over the wire is the documented JSON command API.
	lam.mu.Lock()
	joined := strings.Join(lam.payloads, "\n")
	lam.mu.Unlock()
	for _, want := range []string{`{"command":"limits.list"}`, `{"command":"usage","args":{"by":["project","user","model"]}}`,
		`{"command":"limits.set","args":{"project":"web","user":"*","model":"*","period":"day","usd":"2.5"}}`, `{"command":"cache.flush","args":{"scope":"project:ml"}}`,
		`{"command":"keys.revoke","args":{"id":"` + keys[0].ID + `"}}`} {
		if !strings.Contains(joined, want) {
			t.Errorf("no payload %s in:\n%s", want, joined)
		}
	}
}

func TestAdminRemoteErrors(t *testing.T) {
	awsTestEnv(t)
	st, _ := sqlite.Open(context.Background(), ":memory:")
	defer st.Close()
	lam := newFakeLambda(t, "wrapi-dev-admin", &admin.Service{Store: st, Stage: "dev"})
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", lam.URL)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"stage not configured", []string{"limits", "list", "--stage", "prod"}, 2, `stage "prod" has no admin_function`},
		{"explicit function, wrong region", []string{"limits", "list", "--admin-function", "wrapi-dev-admin", "--region", "us-east-1"}, 1, "InvalidSignatureException"},
		{"unknown function", []string{"limits", "list", "--admin-function", "nope", "--region", "eu-west-1"}, 1, "ResourceNotFoundException"},
		{"no cache on the stage", []string{"cache", "flush", "--admin-function", "wrapi-dev-admin", "--region", "eu-west-1"}, 2, "no response cache"},
		{"no region anywhere", []string{"keys", "list", "--admin-function", "wrapi-dev-admin"}, 2, "no AWS region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := run(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d %q; want %d with %q", code, errs, tc.code, tc.want)
			}
		})
	}
	// --admin-function with the right region works without stages.json.
	if code, out, errs := run(t, "limits", "list", "--json", "--admin-function", "wrapi-dev-admin", "--region", "eu-west-1"); code != 0 || out != "[]\n" {
		t.Errorf("explicit function: %d %q %q", code, out, errs)
	}
}
