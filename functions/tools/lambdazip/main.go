// Command lambdazip zips a Lambda executable reproducibly:
// lambdazip BINARY OUT.zip (the entry is named bootstrap).
package main

import (
	"fmt"
	"os"

	"github.com/wrapi-dev/wrapi/functions/internal/lambdazip"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: lambdazip BINARY OUT.zip")
		os.Exit(2)
	}
	if err := lambdazip.Bootstrap(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
