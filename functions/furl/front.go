package furl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credential is an AWS access key the Front knows, and who it belongs to.
type Credential struct {
	Secret string
	// SessionToken, when set, must be sent (temporary credentials).
	SessionToken string
	// ARN is the caller's IAM ARN (arn:aws:iam::111122223333:user/alice or
	// arn:aws:sts::111122223333:assumed-role/Role/session).
	ARN string
	// UserID is the IAM unique id (AIDA… or AROA…:session); derived from
	// ARN when empty.
	UserID string
}

// FrontConfig configures a Front.
type FrontConfig struct {
	// Handler is served as the function's code, through lambdaurl.Wrap.
	Handler http.Handler
	// Region the function URL pretends to live in; signatures must be
	// scoped to it and to the service "lambda".
	Region string
	// Credentials are the access keys accepted, by access key id.
	Credentials map[string]Credential
	// MaxSkew is how far X-Amz-Date may be from now (default 5 minutes,
	// as AWS allows).
	MaxSkew time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Logger receives rejection reasons (never secrets); default discard.
	Logger *slog.Logger
}

// Front is a local stand-in for a Lambda function URL with AWS_IAM auth
// and RESPONSE_STREAM invoke mode, for tests and demos: it verifies each
// request's SigV4 signature like AWS does, turns the request into the
// function URL event (payload format 2.0, IAM authorizer context filled
// from the verified key), runs the handler in-process through
// lambdaurl.Wrap, and streams the response back chunk by chunk.
//
// Refusals use the function URL's own shape: 403 {"Message":"Forbidden"}.
type Front struct {
	cfg    FrontConfig
	fn     func(context.Context, *events.LambdaFunctionURLRequest) (*events.LambdaFunctionURLStreamingResponse, error)
	signer *v4.Signer
}

var _ http.Handler = (*Front)(nil)

// maxPayload is the function URL's request payload limit.
const maxPayload = 6 << 20

// NewFront validates c and returns the front.
func NewFront(c FrontConfig) (*Front, error) {
	var errs []error
	if c.Handler == nil {
		errs = append(errs, errors.New("furl: front: a handler is required"))
	}
	if c.Region == "" {
		errs = append(errs, errors.New("furl: front: a region is required"))
	}
	for id, cr := range c.Credentials {
		if cr.Secret == "" || !strings.HasPrefix(cr.ARN, "arn:") {
			errs = append(errs, fmt.Errorf("furl: front: credential %s needs a secret and an ARN", id))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.MaxSkew <= 0 {
		c.MaxSkew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Front{cfg: c, fn: lambdaurl.Wrap(c.Handler), signer: v4.NewSigner()}, nil
}

func writeAWSError(w http.ResponseWriter, status int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", errType)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"Message":%q}`, msg)
}

// ServeHTTP implements http.Handler.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPayload+1))
	if err != nil {
		writeAWSError(w, http.StatusBadRequest, "BadRequestException", "Bad Request")
		return
	}
	if len(body) > maxPayload {
		writeAWSError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "Request Entity Too Large")
		return
	}
	akid, cred, err := f.verify(r, body)
	if err != nil {
		f.cfg.Logger.Info("function URL front: request refused", "reason", err.Error(), "path", r.URL.Path)
		writeAWSError(w, http.StatusForbidden, "AccessDeniedException", "Forbidden")
		return
	}
	ev := f.event(r, body, akid, cred)
	// The function runs as on Lambda: a client that goes away does not
	// cancel the invocation.
	resp, err := f.fn(context.WithoutCancel(r.Context()), ev)
	if err != nil {
		f.cfg.Logger.Error("function URL front: invocation failed", "err", err)
		writeAWSError(w, http.StatusBadGateway, "InternalServerError", "Internal Server Error")
		return
	}
	defer resp.Close() // unblocks the handler if the client left
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if rerr != nil {
			return
		}
	}
}

// authHeader splits "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…".
func authHeader(s string) (cred, signedHeaders, sig string, ok bool) {
	rest, found := strings.CutPrefix(s, "AWS4-HMAC-SHA256 ")
	if !found {
		return "", "", "", false
	}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signedHeaders = v
		case "Signature":
			sig = v
		}
	}
	return cred, signedHeaders, sig, cred != "" && signedHeaders != "" && sig != ""
}

// verify checks r's SigV4 signature by signing the same canonical request
// again (the request's signed headers, its date and its body's hash) with
// the secret of the access key it names.
func (f *Front) verify(r *http.Request, body []byte) (string, Credential, error) {
	credStr, signedHeaders, sig, ok := authHeader(r.Header.Get("Authorization"))
	if !ok {
		return "", Credential{}, errors.New("missing or malformed SigV4 Authorization header")
	}
	scope := strings.Split(credStr, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return "", Credential{}, fmt.Errorf("malformed credential scope %q", credStr)
	}
	akid, date, region, service := scope[0], scope[1], scope[2], scope[3]
	cred, known := f.cfg.Credentials[akid]
	if !known {
		return "", Credential{}, fmt.Errorf("unknown access key %s", akid)
	}
	if region != f.cfg.Region || service != "lambda" {
		return "", Credential{}, fmt.Errorf("scope %s/%s, want %s/lambda", region, service, f.cfg.Region)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", Credential{}, errors.New("missing or malformed X-Amz-Date")
	}
	if at.Format("20060102") != date {
		return "", Credential{}, errors.New("the credential scope's date is not X-Amz-Date's")
	}
	if skew := f.cfg.Now().Sub(at); skew > f.cfg.MaxSkew || skew < -f.cfg.MaxSkew {
		return "", Credential{}, fmt.Errorf("X-Amz-Date is %s away from now", skew.Round(time.Second))
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if cred.SessionToken != "" && !hmac.Equal([]byte(token), []byte(cred.SessionToken)) {
		return "", Credential{}, errors.New("missing or wrong session token")
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return "", Credential{}, errors.New("X-Amz-Content-Sha256 does not match the body")
	}
	names := strings.Split(signedHeaders, ";")
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	if !has["host"] || !has["x-amz-date"] || (token != "" && !has["x-amz-security-token"]) {
		return "", Credential{}, fmt.Errorf("signed headers %q leave out host, x-amz-date or x-amz-security-token", signedHeaders)
	}

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	sr := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host, Header: http.Header{},
	}
	for _, n := range names {
		switch n {
		case "host", "x-amz-date", "x-amz-security-token": // set by the signer
		case "content-length":
			sr.ContentLength = int64(len(body))
		default:
			vals := r.Header.Values(n)
			if len(vals) == 0 {
				return "", Credential{}, fmt.Errorf("signed header %s is missing", n)
			}
			sr.Header[http.CanonicalHeaderKey(n)] = vals
		}
	}
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: cred.Secret, SessionToken: token}
	if err := f.signer.SignHTTP(r.Context(), creds, sr, hash, service, region, at); err != nil {
		return "", Credential{}, fmt.Errorf("recompute signature: %w", err)
	}
	_, gotHeaders, want, _ := authHeader(sr.Header.Get("Authorization"))
	if gotHeaders != signedHeaders {
		return "", Credential{}, fmt.Errorf("signed headers %q cannot be reproduced (got %q)", signedHeaders, gotHeaders)
	}
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "", Credential{}, errors.New("signature mismatch")
	}
	return akid, cred, nil
}

// accountOf reads the account id of an ARN.
func accountOf(arn string) string {
	if p := strings.Split(arn, ":"); len(p) >= 5 {
		return p[4]
	}
	return ""
}

// userIDOf makes a stable stand-in for IAM's unique id: AIDA… for users,
// AROA…:session for assumed roles.
func userIDOf(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	id := strings.ToUpper(hex.EncodeToString(sum[:8]))
	if _, res, ok := strings.Cut(arn, ":assumed-role/"); ok {
		if i := strings.LastIndexByte(res, '/'); i >= 0 {
			return "AROA" + id + ":" + res[i+1:]
		}
	}
	return "AIDA" + id
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// event builds the function URL event AWS would send for r.
func (f *Front) event(r *http.Request, body []byte, akid string, cred Credential) *events.LambdaFunctionURLRequest {
	now := f.cfg.Now().UTC()
	ev := &events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[k] = strings.Join(vs, ",")
	}
	ev.Headers["host"] = r.Host
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	userID := cred.UserID
	if userID == "" {
		userID = userIDOf(cred.ARN)
	}
	account := accountOf(cred.ARN)
	host := r.Host
	prefix, _, _ := strings.Cut(host, ".")
	ev.RequestContext = events.LambdaFunctionURLRequestContext{
		AccountID: account, RequestID: requestID(), APIID: prefix, DomainName: host, DomainPrefix: prefix,
		Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
		Authorizer: &events.LambdaFunctionURLRequestContextAuthorizerDescription{
			IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{
				AccessKey: akid, AccountID: account, CallerID: userID, UserARN: cred.ARN, UserID: userID,
			},
		},
		HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
			Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent(),
		},
	}
	return ev
}
