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
	_, deps, logger, err := stage.Boot(context.Background(), stage.Needs{})
	if err != nil {
		logger.Error("reaper cannot start", "err", err)
		os.Exit(1)
	}
	lambda.Start(stage.ReaperHandler(deps.Store, logger))
}
