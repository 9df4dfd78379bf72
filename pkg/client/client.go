package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Service is the SigV4 service name of Lambda function URLs.
const Service = "lambda"

// MaxBody is the largest request body the transport sends: a function URL
// invocation carries at most 6 MB, so larger bodies are refused before
// they are signed and uploaded for nothing.
const MaxBody = 6 << 20

// Header names the transport sets (the openai-wrapi headers).
const (
	HeaderProject = "openai-proxy-project"
	HeaderCaching = "openai-proxy-caching"
	HeaderStaging = "openai-proxy-staging"
)

// Errors RoundTrip returns (wrapped), before anything is sent.
var (
	// ErrBodyTooLarge: the request body is over MaxBody.
	ErrBodyTooLarge = errors.New("client: request body exceeds the 6 MB function URL payload limit")
	// ErrCredentials: the credentials provider failed (no credentials,
	// an expired SSO session, …).
	ErrCredentials = errors.New("client: no usable AWS credentials")
)

// Config configures a Transport.
type Config struct {
	// URL is the stage's function URL, e.g.
	// https://abc123.lambda-url.us-east-1.on.aws. Requests keep their path
	// (/v1/chat/completions); a path in URL (other than /v1) is a prefix.
	URL string
	// Region the function URL lives in. Empty: taken from a
	// *.lambda-url.<region>.on.aws host.
	Region string
	// Credentials sign each request. They are wrapped in an
	// aws.CredentialsCache, so expiring credentials (SSO, assumed roles,
	// instance roles) are refreshed before they are used.
	Credentials aws.CredentialsProvider
	// Project, Caching ("1" or "0") and Staging are sent as the
	// openai-proxy-* headers on requests that do not carry them already;
	// empty sends nothing (the stage's defaults apply).
	Project, Caching, Staging string
	// Base sends the signed requests (default http.DefaultTransport).
	Base http.RoundTripper
	// Now is the signing clock (tests); default time.Now.
	Now func() time.Time
}

// Transport is an http.RoundTripper that sends OpenAI API requests to a
// wrapi stage, signed with the caller's AWS credentials.
type Transport struct {
	cfg    Config
	err    error
	base   *url.URL
	prefix string
	creds  aws.CredentialsProvider
	signer *v4.Signer
}

var _ http.RoundTripper = (*Transport)(nil)

// regionFromHost reads <id>.lambda-url.<region>.on.aws.
func regionFromHost(host string) string {
	parts := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+3 < len(parts); i++ {
		if parts[i] == "lambda-url" && parts[i+2] == "on" && parts[i+3] == "aws" {
			return parts[i+1]
		}
	}
	return ""
}

// Validate reports what is wrong with c, all problems at once.
func (c Config) Validate() error {
	_, _, err := c.parse()
	return err
}

func (c Config) parse() (u *url.URL, region string, err error) {
	var errs []error
	u, perr := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("client: the stage's function URL is required"))
	case perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		errs = append(errs, fmt.Errorf("client: URL %q is not an http(s) URL", c.URL))
	case u.RawQuery != "" || u.User != nil:
		errs = append(errs, fmt.Errorf("client: URL %q must not carry a query or user info", c.URL))
	}
	region = c.Region
	if region == "" && u != nil {
		region = regionFromHost(u.Hostname())
	}
	if region == "" {
		errs = append(errs, errors.New("client: the region is required (it is not in the URL's host)"))
	}
	if c.Credentials == nil {
		errs = append(errs, errors.New("client: AWS credentials are required"))
	}
	if c.Caching != "" && c.Caching != "1" && c.Caching != "0" {
		errs = append(errs, fmt.Errorf("client: caching %q must be 1, 0 or empty", c.Caching))
	}
	return u, region, errors.Join(errs...)
}

// New returns a Transport. A configuration error (see Config.Validate) is
// returned by every RoundTrip, so New can be used inline in an
// http.Client literal.
func New(c Config) *Transport {
	t := &Transport{cfg: c, signer: v4.NewSigner()}
	u, region, err := c.parse()
	if err != nil {
		t.err = err
		return t
	}
	t.cfg.Region = region
	t.base = u
	t.prefix = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1")
	if aws.IsCredentialsProvider(c.Credentials, (*aws.CredentialsCache)(nil)) {
		t.creds = c.Credentials
	} else {
		t.creds = aws.NewCredentialsCache(c.Credentials)
	}
	if t.cfg.Base == nil {
		t.cfg.Base = http.DefaultTransport
	}
	if t.cfg.Now == nil {
		t.cfg.Now = time.Now
	}
	return t
}

// signed reports whether a header takes part in the signature. The set is
// kept small on purpose: headers an SDK, a proxy or the Go transport may
// add or rewrite on the way (User-Agent, Accept-Encoding, X-Stainless-*)
// stay out, so they cannot break the signature.
func signed(k string) bool {
	k = strings.ToLower(k)
	return k == "content-type" || strings.HasPrefix(k, "x-amz-") || strings.HasPrefix(k, "openai-")
}

// RoundTrip signs r and sends it to the stage. The response is the
// stage's, untouched (streams included).
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	if t.err != nil {
		return nil, t.err
	}
	ctx := r.Context()
	out := r.Clone(ctx)
	u := *r.URL
	u.Scheme, u.Host, u.User, u.Fragment = t.base.Scheme, t.base.Host, nil, ""
	if t.prefix != "" {
		u.Path, u.RawPath = t.prefix+u.Path, ""
	}
	out.URL, out.Host = &u, ""
	// OpenAI SDKs always send Authorization: Bearer $OPENAI_API_KEY; the
	// stage must see the SigV4 signature instead, and the key goes nowhere.
	out.Header.Del("Authorization")
	for k := range out.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
			out.Header.Del(k)
		}
	}
	for _, h := range [...]struct{ name, value string }{
		{HeaderProject, t.cfg.Project}, {HeaderCaching, t.cfg.Caching}, {HeaderStaging, t.cfg.Staging},
	} {
		if h.value != "" && out.Header.Get(h.name) == "" {
			out.Header.Set(h.name, h.value)
		}
	}
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body, out.GetBody = http.NoBody, nil
	} else {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	out.TransferEncoding = nil
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	out.Header.Set("X-Amz-Content-Sha256", hash)

	creds, err := t.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCredentials, err)
	}
	if err := t.sign(ctx, out, creds, hash); err != nil {
		return nil, err
	}
	return t.cfg.Base.RoundTrip(out)
}

// sign signs a copy of out that carries only the signed headers, then
// copies the signature (and the date and token it covers) onto out.
func (t *Transport) sign(ctx context.Context, out *http.Request, creds aws.Credentials, hash string) error {
	su := *out.URL
	sr := &http.Request{Method: out.Method, URL: &su, Header: http.Header{}, ContentLength: out.ContentLength}
	for k, v := range out.Header {
		if signed(k) {
			sr.Header[k] = v
		}
	}
	if err := t.signer.SignHTTP(ctx, creds, sr, hash, Service, t.cfg.Region, t.cfg.Now()); err != nil {
		return fmt.Errorf("client: sign: %w", err)
	}
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		if v := sr.Header.Get(k); v != "" {
			out.Header.Set(k, v)
		}
	}
	// The signer canonicalises the query; send exactly what was signed.
	out.URL.RawQuery = su.RawQuery
	return nil
}

// readBody buffers and closes the request body (a RoundTripper must close
// it, errors included).
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	if r.ContentLength > MaxBody {
		return nil, fmt.Errorf("%w (%d bytes)", ErrBodyTooLarge, r.ContentLength)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("client: read request body: %w", err)
	}
	if len(b) > MaxBody {
		return nil, fmt.Errorf("%w (more than %d bytes)", ErrBodyTooLarge, MaxBody)
	}
	return b, nil
}
