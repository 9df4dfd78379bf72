package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/wrapi-dev/wrapi/functions/furl"
	"github.com/wrapi-dev/wrapi/functions/stage"
	"github.com/wrapi-dev/wrapi/pkg/admin"
	"github.com/wrapi-dev/wrapi/pkg/budget"
	"github.com/wrapi-dev/wrapi/pkg/openaitest"
	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
)

// These tests run a deployed stage's request path on this machine: the
// real `wrapi connect` binary signs what the official SDKs send, a local
// function URL front (furl.Front) verifies the SigV4 signature and builds
// the function URL event with the signer's IAM identity, and the stage's
// proxy handler (stage.ProxyHandler, on SQLite) meters it against the
// fake OpenAI upstream.

// identity is an IAM user the front knows.
type identity struct{ akid, secret, arn, user string }

var (
	alice = identity{"AKIAALICEINTEGRATION", "alice/integration/EXAMPLEKEY", "arn:aws:iam::111122223333:user/alice", "alice"}
	bob   = identity{"AKIABOBINTEGRATION00", "bob/integration/EXAMPLEKEY", "arn:aws:iam::111122223333:user/bob", "bob"}
)

// awsEnv gives a process exactly one set of AWS credentials: no profile
// files, no instance metadata, no saved stages.
func awsEnv(t *testing.T, id identity) []string {
	dir := t.TempDir()
	return []string{
		"AWS_ACCESS_KEY_ID=" + id.akid, "AWS_SECRET_ACCESS_KEY=" + id.secret, "AWS_SESSION_TOKEN=", "AWS_REGION=us-east-1",
		"AWS_PROFILE=", "AWS_DEFAULT_PROFILE=", "AWS_CONFIG_FILE=" + filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "AWS_EC2_METADATA_DISABLED=true",
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "OPENAI_BASE_URL=", "OPENAI_API_KEY=",
		"OPENAI_DEFAULT_PROJECT=", "OPENAI_DEFAULT_STAGING=", "OPENAI_DEFAULT_CACHING=",
	}
}

// deployedStage is the stage "dev" behind a local function URL front.
type deployedStage struct {
	url string // the front, standing for https://….lambda-url.us-east-1.on.aws
	st  *sqlite.Store
	up  *openaitest.Server
}

func newDeployedStage(t *testing.T) *deployedStage {
	t.Helper()
	up := openaitest.NewServer(openaitest.WithAPIKey("sk-upstream-it"))
	t.Cleanup(up.Close)
	vars := map[string]string{"WRAPI_STAGE": "dev", "WRAPI_TABLE": "wrapi-dev", "WRAPI_CACHE": "off", "WRAPI_UPSTREAM": up.URL}
	cfg, err := stage.FromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Deployed stages require a limit; one for every project.
	if _, err := (&admin.Service{Store: st, Stage: "dev"}).SetLimit(ctx, budget.Scope{Project: "*"}, "month", "10"); err != nil {
		t.Fatal(err)
	}
	d := stage.Deps{Store: st}
	d.Credentials.APIKey = "sk-upstream-it" // from Secrets Manager when deployed
	h, err := cfg.ProxyHandler(d, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	front, err := furl.NewFront(furl.FrontConfig{Handler: h, Region: "us-east-1", Credentials: map[string]furl.Credential{
		alice.akid: {Secret: alice.secret, ARN: alice.arn},
		bob.akid:   {Secret: bob.secret, ARN: bob.arn},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	return &deployedStage{url: srv.URL, st: st, up: up}
}

// usage is the stage's bill: "user/project/model" → requests and cost.
func (s *deployedStage) usage(t *testing.T) map[string]string {
	t.Helper()
	rows, err := s.st.DailyUsage(context.Background(), store.UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range admin.Group(rows, []string{"user", "project", "model"}).Lines {
		out[l.User+"/"+l.Project+"/"+l.Model] = fmt.Sprintf("%d requests %d errors %s USD", l.Requests, l.Errors, l.Cost)
	}
	return out
}

// checkUpstream asserts that OpenAI saw the stage's key and nothing of
// the client's (no SDK key, no AWS signature).
func (s *deployedStage) checkUpstream(t *testing.T, want int) {
	t.Helper()
	reqs := s.up.Requests()
	if len(reqs) != want {
		t.Errorf("the upstream got %d requests, want %d", len(reqs), want)
	}
	for _, r := range reqs {
		if r.Header.Get("Authorization") != "Bearer sk-upstream-it" || r.Header.Get("X-Amz-Date") != "" || r.Header.Get("openai-proxy-project") != "" {
			t.Errorf("upstream request headers: %v", r.Header)
		}
	}
}

// startConnect runs the real `wrapi connect` and returns the base URL it
// prints.
func startConnect(t *testing.T, wrapi string, env []string, args ...string) string {
	t.Helper()
	p := start(t, env, regexp.MustCompile(`^export OPENAI_BASE_URL=`), wrapi, append([]string{"connect", "--port", "0"}, args...)...)
	m := regexp.MustCompile(`export OPENAI_BASE_URL=(http://127\.0\.0\.1:\d+/v1) OPENAI_API_KEY=unused`).FindStringSubmatch(p.output.String())
	if m == nil {
		t.Fatalf("no export line in:\n%s", p.output.String())
	}
	if strings.Contains(p.output.String(), alice.secret) || strings.Contains(p.output.String(), bob.secret) {
		t.Error("connect printed an AWS secret")
	}
	return m[1]
}

var (
	exampleOnce sync.Map // dir → *exampleBuild
)

type exampleBuild struct {
	once sync.Once
	bin  string
	err  error
}

// buildExample builds integration/examples/<name> once per run.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	v, _ := exampleOnce.LoadOrStore(name, &exampleBuild{})
	b := v.(*exampleBuild)
	wrapi, _ := binaries(t) // its directory lives for the whole run
	b.once.Do(func() {
		b.bin = filepath.Join(filepath.Dir(wrapi), "example-"+name)
		cmd := exec.Command("go", "build", "-o", b.bin, "./examples/"+name)
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build examples/%s: %v\n%s", name, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// runJSON runs a program and decodes the JSON it prints.
func runJSON(t *testing.T, env []string, dir string, name string, args ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %v\n%s%s", filepath.Base(name), err, out, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s printed no JSON: %v\n%s", filepath.Base(name), err, out)
	}
	return m
}

// checkSDKResults asserts what both SDK scripts print: the recorded
// answers, streamed text reassembled, 8-dimension embeddings.
func checkSDKResults(t *testing.T, got map[string]any) {
	t.Helper()
	for _, k := range []string{"chat", "chat_stream", "responses"} {
		if s, _ := got[k].(string); len(s) < 10 {
			t.Errorf("%s = %q, want the recorded answer", k, got[k])
		}
	}
	if got["embedding_dims"] != float64(8) {
		t.Errorf("embedding_dims = %v, want 8", got["embedding_dims"])
	}
}

// wantBill is the bill of one SDK script run by user: chat, chat stream
// and responses on the sidecar's project, embeddings on "research".
func wantBill(user, project string) map[string]string {
	return map[string]string{
		user + "/" + project + "/gpt-4o-mini":     "2 requests 0 errors 0.00029985 USD", // 196.05 + 103.8 µ$
		user + "/" + project + "/gpt-5-mini":      "1 requests 0 errors 0.001143 USD",
		user + "/research/text-embedding-3-small": "1 requests 0 errors 0.00000022 USD",
	}
}

// eventuallyBill waits (up to 15 s) for the stage's bill to be want: the
// record of a request may be committed just after its client has the
// whole response.
func eventuallyBill(t *testing.T, s *deployedStage, want map[string]string) {
	t.Helper()
	keys := func(m map[string]string) string {
		var ks []string
		for k, v := range m {
			ks = append(ks, k+": "+v)
		}
		sort.Strings(ks)
		return strings.Join(ks, "\n")
	}
	eventually(t, "bill", func() error {
		if got := s.usage(t); keys(got) != keys(want) {
			return fmt.Errorf("\n%s\nwant:\n%s", keys(got), keys(want))
		}
		return nil
	})
}

// TestConnectOpenAIGo: the openai-go example, unchanged, through the real
// `wrapi connect` signing as alice, with openai-wrapi's env vars.
func TestConnectOpenAIGo(t *testing.T) {
	wrapi, _ := binaries(t)
	s := newDeployedStage(t)
	env := append(awsEnv(t, alice), "OPENAI_DEFAULT_PROJECT=ml", "OPENAI_DEFAULT_STAGING=dev")
	base := startConnect(t, wrapi, env, "--url", s.url)
	got := runJSON(t, append(awsEnv(t, alice), "OPENAI_BASE_URL="+base, "OPENAI_API_KEY=unused"), "", buildExample(t, "connect"))
	checkSDKResults(t, got)
	eventuallyBill(t, s, wantBill("alice", "ml"))
	s.checkUpstream(t, 4)
}

// TestConnectNodeSDK: the official openai npm SDK script, unchanged,
// through `wrapi connect` signing as bob (another IAM user, another bill).
func TestConnectNodeSDK(t *testing.T) {
	node := nodeModules(t)
	wrapi, _ := binaries(t)
	s := newDeployedStage(t)
	base := startConnect(t, wrapi, awsEnv(t, bob), "--url", s.url, "--stage", "dev", "--project", "web")
	got := runJSON(t, append(awsEnv(t, bob), "OPENAI_BASE_URL="+base, "OPENAI_API_KEY=unused"),
		filepath.Join(repoRoot(t), "integration", "node"), node, "connect.mjs")
	checkSDKResults(t, got)
	eventuallyBill(t, s, wantBill("bob", "web"))
	s.checkUpstream(t, 4)
}

// TestClientTransportExample: the pkg/client example (no sidecar) signs
// with the SDK's default credential chain.
func TestClientTransportExample(t *testing.T) {
	s := newDeployedStage(t)
	cmd := exec.Command(buildExample(t, "client"))
	cmd.Env = append(os.Environ(), append(awsEnv(t, alice), "WRAPI_URL="+s.url)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) < 10 {
		t.Fatalf("examples/client: %v\n%s", err, out)
	}
	eventuallyBill(t, s, map[string]string{"alice/my-project/gpt-4o-mini": "1 requests 0 errors 0.00019605 USD"})
	// A key the stage does not know is refused by the front (403), and
	// the refusal is not billed.
	cmd = exec.Command(buildExample(t, "client"))
	cmd.Env = append(os.Environ(), append(awsEnv(t, identity{"AKIAMALLORY000000000", "x", "", ""}), "WRAPI_URL="+s.url)...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "403") {
		t.Errorf("an unknown key was not refused: %v\n%s", err, out)
	}
	s.checkUpstream(t, 1)
}

// TestConnectCurlSnippet runs the curl snippet of docs/use-it.md through
// the sidecar, then the same call with openai-wrapi's openai-proxy-user
// header forged: behind IAM it changes nothing, the signer is billed.
func TestConnectCurlSnippet(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required under CI")
		}
		t.Skip("curl not installed")
	}
	wrapi, _ := binaries(t)
	s := newDeployedStage(t)
	base := startConnect(t, wrapi, awsEnv(t, alice), "--url", s.url, "--stage", "dev", "--project", "ml")
	snippet := docBlock(t, "curl")
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", snippet+"\n")
	cmd.Env = append(os.Environ(), append(awsEnv(t, alice), "OPENAI_BASE_URL="+base, "OPENAI_API_KEY=unused")...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"chat.completion"`) {
		t.Fatalf("curl snippet: %v\n%s", err, out)
	}
	cmd = exec.Command("bash", "-euo", "pipefail", "-c", strings.Replace(snippet, "curl ", "curl -H 'openai-proxy-user: mallory' ", 1)+"\n")
	cmd.Env = append(os.Environ(), append(awsEnv(t, alice), "OPENAI_BASE_URL="+base, "OPENAI_API_KEY=unused")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl with a forged user: %v\n%s", err, out)
	}
	eventuallyBill(t, s, map[string]string{"alice/ml/gpt-4o-mini": "2 requests 0 errors 0.0003921 USD"})
}

// nodeModules installs integration/node's locked dependencies (the
// openai npm SDK) when they are missing, from the npm registry only, and
// returns the node binary. Missing node or npm skips locally and fails
// under CI.
func nodeModules(t *testing.T) string {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node and npm are required under CI (scripts/deps.sh installs them)")
		}
		t.Skip("node or npm not installed")
	}
	dir := filepath.Join(repoRoot(t), "integration", "node")
	var lock struct {
		Packages map[string]struct {
			Version      string            `json:"version"`
			Dependencies map[string]string `json:"dependencies"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil || json.Unmarshal(b, &lock) != nil {
		t.Fatalf("integration/node/package-lock.json: %v", err)
	}
	// Every locked direct dependency must be installed at its locked
	// version, else `npm ci` installs them all again.
	installed := len(lock.Packages[""].Dependencies) > 0
	for name := range lock.Packages[""].Dependencies {
		want := lock.Packages["node_modules/"+name].Version
		var have struct {
			Version string `json:"version"`
		}
		if b, err := os.ReadFile(filepath.Join(dir, "node_modules", filepath.FromSlash(name), "package.json")); err == nil {
			json.Unmarshal(b, &have)
		}
		installed = installed && want != "" && have.Version == want
	}
	if installed {
		return node
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in integration/node: %v\n%s", err, out)
	}
	return node
}

// docBlock returns the fenced code block of docs/use-it.md that follows
// the marker <!-- test: NAME -->.
func docBlock(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "use-it.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- test: " + regexp.QuoteMeta(name) + " -->\n```[a-z]*\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/use-it.md has no block marked <!-- test: %s -->", name)
	}
	return string(m[1])
}

// TestDocsSnippetsAreTheTestedFiles: the Go and Node snippets of
// docs/use-it.md are byte for byte the programs the tests above run.
func TestDocsSnippetsAreTheTestedFiles(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "use-it.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- file: ([^ ]+) -->\n```[a-z]*\n(.*?)```").FindAllSubmatch(b, -1)
	seen := map[string]bool{}
	for _, m := range blocks {
		path := string(m[1])
		src, err := os.ReadFile(filepath.Join(repoRoot(t), filepath.FromSlash(path)))
		if err != nil {
			t.Errorf("docs/use-it.md shows %s: %v", path, err)
			continue
		}
		if string(src) != string(m[2]) {
			t.Errorf("docs/use-it.md's copy of %s differs from the file the tests run; paste the file again", path)
		}
		seen[path] = true
	}
	for _, want := range []string{"integration/examples/connect/main.go", "integration/examples/client/main.go", "integration/node/connect.mjs"} {
		if !seen[want] {
			t.Errorf("docs/use-it.md does not show %s", want)
		}
	}
}
