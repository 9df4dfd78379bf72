// Command client calls OpenAI through a wrapi stage from Go without a
// sidecar: pkg/client signs each request with the caller's AWS
// credentials (environment, profile, SSO or instance role).
//
//	WRAPI_URL=https://abc123.lambda-url.us-east-1.on.aws go run .
//
// The integration tests run this very file (see docs/use-it.md).
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/wrapi-dev/wrapi/pkg/client"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	stageURL := os.Getenv("WRAPI_URL") // the stage's function URL
	oc := openai.NewClient(
		option.WithBaseURL(stageURL+"/v1"),
		option.WithAPIKey("unused"), // the SigV4 signature replaces the key
		option.WithHTTPClient(&http.Client{Transport: client.New(client.Config{
			URL:         stageURL,
			Region:      cfg.Region,
			Credentials: cfg.Credentials,
			Project:     "my-project",
		})}),
	)
	chat, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is your refund window for annual plans?")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(chat.Choices[0].Message.Content)
}
