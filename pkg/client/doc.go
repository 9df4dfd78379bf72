// Package client sends OpenAI API calls from Go programs to a wrapi stage
// deployed on AWS, with the caller's own AWS identity.
//
// A stage's function URL uses AWS_IAM auth: every request must be signed
// with SigV4 for the service "lambda", and the stage bills the IAM
// principal that signed it. Transport is an http.RoundTripper that does
// this for any HTTP client, so an OpenAI SDK keeps working unchanged:
//
//   - it points the request at the stage's function URL, keeping the
//     request path (/v1/chat/completions);
//   - it drops the Authorization header the SDK sets (OpenAI SDKs always
//     send "Bearer $OPENAI_API_KEY"; the key is neither needed nor sent);
//   - it adds the openai-wrapi headers (openai-proxy-project, -caching,
//     -staging) from its Config unless the request already carries them,
//     so a per-request header overrides the default;
//   - it buffers the body (function URL payloads are at most 6 MB),
//     hashes it into X-Amz-Content-Sha256 and signs the request with
//     credentials from an aws.CredentialsCache, which refreshes expiring
//     credentials (SSO, assumed roles, instance roles) before use;
//   - it returns the stage's response untouched, so streams (SSE) arrive
//     chunk by chunk.
//
// Only a few headers are signed (host, content-type, content-length,
// x-amz-*, openai-*): headers that SDKs and transports add or rewrite on
// the way (User-Agent, Accept-Encoding, X-Stainless-*) cannot break the
// signature.
//
// With openai-go, credentials from the default chain (environment,
// profiles, SSO, instance roles):
//
//	cfg, err := config.LoadDefaultConfig(ctx) // github.com/aws/aws-sdk-go-v2/config
//	if err != nil {
//		return err
//	}
//	stageURL := "https://abc123.lambda-url.us-east-1.on.aws"
//	oc := openai.NewClient(
//		option.WithBaseURL(stageURL+"/v1"),
//		option.WithAPIKey("unused"), // the signature replaces the key
//		option.WithHTTPClient(&http.Client{Transport: client.New(client.Config{
//			URL:         stageURL,
//			Region:      cfg.Region, // or empty: read from the URL
//			Credentials: cfg.Credentials,
//			Project:     "my-project",
//		})}),
//	)
//	resp, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
//		Model:    "gpt-4o-mini",
//		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
//	})
//
// Programs in other languages use the same signing through `wrapi
// connect`, a local sidecar built on this Transport.
package client
