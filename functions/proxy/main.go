// Command proxy is the stage's OpenAI proxy behind a Lambda function URL
// (AWS_IAM auth, RESPONSE_STREAM): configuration → stores → the same
// handler `wrapi serve` runs → lambdaurl.
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/wrapi-dev/wrapi/functions/stage"
)

func main() {
	cfg, deps, logger, err := stage.Boot(context.Background(), stage.Needs{Secret: true, Cache: true})
	if err == nil {
		var h http.Handler
		if h, err = cfg.ProxyHandler(deps, logger); err == nil {
			lambdaurl.Start(h)
			return
		}
	}
	logger.Error("proxy cannot start", "err", err)
	os.Exit(1)
}
