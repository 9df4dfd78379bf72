// Command reaper runs on an EventBridge schedule and releases the budget
// reservations of requests that died before settling.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wrapi-dev/wrapi/functions/stage"
)

func main() {
	cfg, err := stage.FromEnv(os.Getenv)
	logger := cfg.Logger()
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		os.Exit(1)
	}
	deps, err := stage.Open(context.Background(), cfg, stage.Needs{})
	if err != nil {
		logger.Error("cold start failed", "err", err)
		os.Exit(1)
	}
	lambda.Start(stage.ReaperHandler(deps.Store, logger))
}
