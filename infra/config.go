package main

import (
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

var errUnset = errors.New("unset")

// getBool reads wrapi:<key> as a bool; errUnset when absent.
func getBool(ctx *pulumi.Context, key string, dst *bool) error {
	c := config.New(ctx, "wrapi")
	if c.Get(key) == "" {
		return errUnset
	}
	*dst = c.GetBool(key)
	return nil
}
