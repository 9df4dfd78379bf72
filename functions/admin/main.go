// Command admin is the stage's admin function, invoked with
// lambda:InvokeFunction (IAM decides who is an admin): one JSON command in,
// one JSON answer out (see functions/README.md).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wrapi-dev/wrapi/functions/stage"
)

func main() {
	cfg, deps, logger, err := stage.Boot(context.Background(), stage.Needs{Cache: true})
	if err != nil {
		logger.Error("admin cannot start", "err", err)
		os.Exit(1)
	}
	lambda.Start(stage.AdminHandler(cfg.Admin(deps)))
}
