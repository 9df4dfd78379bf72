// Command proxy is the stage's OpenAI proxy behind a Lambda function URL
// (AWS_IAM auth, RESPONSE_STREAM): configuration → stores → the same
// handler `wrapi serve` runs → lambdaurl.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/wrapi-dev/wrapi/functions/stage"
)

func main() {
	cfg, err := stage.FromEnv(os.Getenv)
	logger := cfg.Logger()
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		os.Exit(1)
	}
	deps, err := stage.Open(context.Background(), cfg, stage.Needs{Secret: true, Cache: true})
	if err != nil {
		logger.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	h, err := cfg.ProxyHandler(deps, logger)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		os.Exit(1)
	}
	lambdaurl.Start(h)
}
