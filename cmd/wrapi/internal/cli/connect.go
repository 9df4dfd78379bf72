package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wrapi-dev/wrapi/pkg/apierror"
	"github.com/wrapi-dev/wrapi/pkg/client"
)

// connectConfig is everything `wrapi connect` needs.
type connectConfig struct {
	stage, project, caching, url, region, profile, adminFunction string
	port                                                         int
	save                                                         bool
	shutdownTimeout                                              time.Duration
}

// cachingEnv reads OPENAI_DEFAULT_CACHING as openai-wrapi does (1/0).
func cachingEnv(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "":
		return "", nil
	case "1", "true", "on", "yes":
		return "1", nil
	case "0", "false", "off", "no":
		return "0", nil
	}
	return "", fmt.Errorf("%w: OPENAI_DEFAULT_CACHING=%q must be 1 or 0", errUsage, v)
}

func runConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("connect", stderr)
	var c connectConfig
	fs.StringVar(&c.stage, "stage", os.Getenv("OPENAI_DEFAULT_STAGING"), "deployed stage to connect to, as named in "+stagesHint+" (default $OPENAI_DEFAULT_STAGING); sent as openai-proxy-staging")
	fs.StringVar(&c.project, "project", os.Getenv("OPENAI_DEFAULT_PROJECT"), "project billed, unless a request sends openai-proxy-project (default $OPENAI_DEFAULT_PROJECT)")
	fs.StringVar(&c.url, "url", "", "the stage's function URL (default: url in "+stagesHint+")")
	fs.IntVar(&c.port, "port", 8788, "port on 127.0.0.1 to listen on (0 picks a free one)")
	noCache := fs.Bool("no-cache", false, "ask the stage not to use its response cache (openai-proxy-caching: 0; default $OPENAI_DEFAULT_CACHING)")
	fs.StringVar(&c.region, "region", "", "AWS region of the function URL (default: the stage's, the URL's, else the AWS config's)")
	fs.StringVar(&c.profile, "profile", "", "AWS profile to sign with (default: the SDK's chain: env, profiles, SSO, instance roles)")
	fs.StringVar(&c.adminFunction, "admin-function", "", "the stage's admin function, saved with --save for the admin commands")
	fs.BoolVar(&c.save, "save", false, "remember --url (and --region, --admin-function) for --stage in "+stagesHint)
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 2*time.Minute, "how long SIGINT/SIGTERM waits for in-flight requests")
	if err := parse(fs, args); err != nil {
		return err
	}
	var err error
	if c.caching, err = cachingEnv(os.Getenv("OPENAI_DEFAULT_CACHING")); err != nil {
		return err
	}
	if *noCache {
		c.caching = "0"
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return connect(ctx, c, stdout, logger, nil)
}

// resolve fills the URL and region from stages.json, and saves them when
// asked.
func (c *connectConfig) resolve(logger *slog.Logger) error {
	if c.port < 0 || c.port > 65535 {
		return fmt.Errorf("%w: --port %d is not a port", errUsage, c.port)
	}
	if c.save && (c.stage == "" || c.url == "") {
		return fmt.Errorf("%w: --save needs --stage and --url", errUsage)
	}
	if c.url == "" || c.region == "" {
		stages, path, err := loadStages()
		if err != nil {
			return err
		}
		e, ok := stages[c.stage]
		if c.url == "" {
			if c.stage == "" {
				return fmt.Errorf("%w: say which stage: --stage NAME (or OPENAI_DEFAULT_STAGING), or --url URL", errUsage)
			}
			if !ok || e.URL == "" {
				return fmt.Errorf("%w: no URL for stage %q in %s (known: %s); pass --url URL (add --save to remember it)",
					errUsage, c.stage, path, known(stages))
			}
			c.url = e.URL
		}
		if c.region == "" && ok && e.URL == c.url {
			c.region = e.Region
		}
	}
	if c.save {
		path, err := saveStage(c.stage, stageEntry{URL: c.url, Region: c.region, AdminFunction: c.adminFunction})
		if err != nil {
			return err
		}
		logger.Info("saved the stage", "stage", c.stage, "file", path)
	}
	return nil
}

// connect runs the sidecar until ctx ends. ready, if non-nil, receives
// the bound address (tests listen on port 0).
func connect(ctx context.Context, c connectConfig, stdout io.Writer, logger *slog.Logger, ready chan<- string) error {
	if err := c.resolve(logger); err != nil {
		return err
	}
	cfg, err := awsConfig(ctx, c.profile, c.region)
	if err != nil {
		return err
	}
	if cfg.Credentials == nil {
		return errors.New("no AWS credentials: set AWS_PROFILE or pass --profile (for SSO, run aws sso login first)")
	}
	tc := client.Config{URL: c.url, Region: c.region, Credentials: cfg.Credentials,
		Project: c.project, Caching: c.caching, Staging: c.stage}
	if tc.Region == "" && tc.Validate() != nil {
		tc.Region = cfg.Region // the URL's host does not name it
	}
	if err := tc.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	// Fail now, not on the first request, when there are no credentials.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	creds, err := cfg.Credentials.Retrieve(cctx)
	cancel()
	if err != nil {
		return fmt.Errorf("no usable AWS credentials (set AWS_PROFILE or pass --profile; for SSO, run aws sso login): %w", err)
	}
	tr := client.New(tc)
	h := sidecar(tr, c, logger)

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := newServer(h, logger)
	base := "http://" + ln.Addr().String() + "/v1"
	describe := fmt.Sprintf("stage %q", c.stage)
	if c.stage == "" {
		describe = "the stage"
	}
	project := c.project
	if project == "" {
		project = "N/A"
	}
	fmt.Fprintf(stdout, "export OPENAI_BASE_URL=%s OPENAI_API_KEY=unused  # wrapi connect: %s at %s, project %q, signed as AWS key %s…\n",
		base, describe, c.url, project, keyHint(creds.AccessKeyID))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return serveUntil(ctx, srv, ln, c.shutdownTimeout, logger)
}

// keyHint shows which credentials sign, without revealing the key.
func keyHint(akid string) string {
	if len(akid) > 8 {
		return akid[:8]
	}
	return akid
}

// sidecar forwards /v1/* through the signing transport, flushing every
// chunk both ways.
func sidecar(tr *client.Transport, c connectConfig, logger *slog.Logger) http.Handler {
	base, _ := url.Parse(c.url)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The transport points the request at the stage; this only
			// makes the outgoing URL absolute.
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = base.Scheme, base.Host, ""
		},
		Transport:      tr,
		FlushInterval:  -1,
		ModifyResponse: translateAWSError,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			switch {
			case r.Context().Err() != nil:
				return // the client went away
			case errors.Is(err, client.ErrBodyTooLarge):
				apierror.Write(w, apierror.TooLarge(client.MaxBody))
			case errors.Is(err, client.ErrCredentials):
				logger.Warn("no usable AWS credentials", "err", err)
				apierror.Write(w, apierror.Unauthenticated("wrapi connect has no usable AWS credentials (expired SSO session? run aws sso login): "+err.Error()))
			default:
				logger.Warn("the stage could not be reached", "url", c.url, "err", err)
				e := apierror.New(http.StatusBadGateway, "api_error", "stage_unreachable", "",
					fmt.Sprintf("wrapi connect could not reach the stage at %s; try again later", c.url))
				apierror.Write(w, e)
			}
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1" && !strings.HasPrefix(r.URL.Path, "/v1/") {
			apierror.Write(w, apierror.NotFound(r.URL.Path))
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// translateAWSError turns the function URL's own refusals ({"Message":
// "Forbidden"}, which no OpenAI SDK can read) into OpenAI-shaped errors
// that say what to check. wrapi's own errors pass untouched.
func translateAWSError(resp *http.Response) error {
	if resp.StatusCode < 400 || resp.Header.Get("X-Amzn-Errortype") == "" {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return err
	}
	var aws struct {
		Message string `json:"Message"`
		Lower   string `json:"message"`
		Error   any    `json:"error"`
	}
	if json.Unmarshal(b, &aws) != nil || aws.Error != nil {
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil
	}
	msg := aws.Message + aws.Lower
	var e *apierror.Error
	switch resp.StatusCode {
	case http.StatusForbidden:
		e = apierror.Forbidden("aws_access_denied", "the stage refused this request's AWS signature (function URL: "+msg+"): "+
			"check that your AWS identity has the stage's users policy (lambda:InvokeFunctionUrl), "+
			"that the stage's region is right, and that your clock is correct")
		e.NoRetry = true
	case http.StatusRequestEntityTooLarge:
		e = apierror.TooLarge(client.MaxBody)
	case http.StatusTooManyRequests:
		e = apierror.New(http.StatusTooManyRequests, "rate_limit_error", "aws_throttled", "", "the stage's Lambda is throttled (function URL: "+msg+"); try again later")
	default:
		e = apierror.New(resp.StatusCode, "api_error", "aws_error", "", "the stage's function URL failed: "+msg)
	}
	body, _ := json.Marshal(struct {
		Error *apierror.Error `json:"error"`
	}{e})
	resp.StatusCode = e.Status
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Del("Content-Length")
	if e.NoRetry {
		resp.Header.Set("x-should-retry", "false")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return nil
}
