// Command infra is wrapi's Pulumi program: one stack per stage
// (pulumi up -s dev). main only runs the program; the resources are built
// by NewStage so tests can run them under pulumi.WithMocks.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		_, err := createInfrastructure(ctx)
		return err
	})
}
