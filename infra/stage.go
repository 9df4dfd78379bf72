package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Stage is one deployment of wrapi (an AWS account: dev, prod): the
// component every per-stage resource is parented to. This first version
// carries the stage's identity and settings; the AWS resources (secret,
// table, Lambdas, function URL, policies) are added by the infrastructure
// issue.
type Stage struct {
	pulumi.ResourceState

	Name         pulumi.StringOutput `pulumi:"name"`
	RequireLimit pulumi.BoolOutput   `pulumi:"requireLimit"`
	ProdLike     pulumi.BoolOutput   `pulumi:"prodLike"`
}

// StageArgs are the validated settings of a stage.
type StageArgs struct {
	Name         string
	RequireLimit bool
}

var stageName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// IsProdLike reports whether a stage name denotes production, which turns
// on deletion protection and stricter defaults.
func IsProdLike(name string) bool {
	n := strings.ToLower(name)
	return n == "prod" || n == "production" || strings.HasPrefix(n, "prod-") || strings.HasSuffix(n, "-prod")
}

// NewStage registers the Stage component.
func NewStage(ctx *pulumi.Context, args StageArgs, opts ...pulumi.ResourceOption) (*Stage, error) {
	if !stageName.MatchString(args.Name) {
		return nil, fmt.Errorf("stage name %q must be 1–24 lowercase letters, digits or dashes, starting with a letter (it is part of AWS resource names)", args.Name)
	}
	s := &Stage{}
	if err := ctx.RegisterComponentResource("wrapi:index:Stage", "wrapi-"+args.Name, s, opts...); err != nil {
		return nil, err
	}
	s.Name = pulumi.String(args.Name).ToStringOutput()
	s.RequireLimit = pulumi.Bool(args.RequireLimit).ToBoolOutput()
	s.ProdLike = pulumi.Bool(IsProdLike(args.Name)).ToBoolOutput()
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"name": s.Name, "requireLimit": s.RequireLimit, "prodLike": s.ProdLike,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// createInfrastructure builds the stage named by the stack and exports its
// outputs.
func createInfrastructure(ctx *pulumi.Context) (*Stage, error) {
	cfg := configFor(ctx)
	s, err := NewStage(ctx, StageArgs{Name: ctx.Stack(), RequireLimit: cfg.requireLimit})
	if err != nil {
		return nil, err
	}
	ctx.Export("stage", s.Name)
	ctx.Export("requireLimit", s.RequireLimit)
	return s, nil
}

type stageConfig struct{ requireLimit bool }

func configFor(ctx *pulumi.Context) stageConfig {
	c := stageConfig{requireLimit: true} // deployed stages refuse unlimited spend by default
	var v bool
	if err := getBool(ctx, "requireLimit", &v); err == nil {
		c.requireLimit = v
	}
	return c
}
