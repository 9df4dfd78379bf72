// Package furl adapts Lambda function URL requests to wrapi's handler: it
// takes the caller's identity from the request context that AWS fills in
// (requestContext.authorizer.iam), never from a header.
package furl

import (
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdaurl"

	"github.com/wrapi-dev/wrapi/pkg/identity"
)

// Principal returns the IAM caller of a function URL request. A request
// without IAM context (the URL's auth type is NONE) is unauthenticated.
func Principal(rc events.LambdaFunctionURLRequestContext) (identity.Principal, error) {
	if rc.Authorizer == nil || rc.Authorizer.IAM == nil || rc.Authorizer.IAM.UserARN == "" {
		return identity.Principal{}, &identity.ErrUnauthenticated{Reason: "the request is not signed with AWS credentials (SigV4); use `wrapi connect`"}
	}
	return identity.FromIAM(rc.Authorizer.IAM.UserARN)
}

// IAM authenticates requests served by lambdaurl from their IAM context.
type IAM struct{}

// Authenticate implements identity.Authenticator.
func (IAM) Authenticate(r *http.Request) (identity.Principal, error) {
	ev, ok := lambdaurl.RequestFromContext(r.Context())
	if !ok {
		return identity.Principal{}, &identity.ErrUnauthenticated{Reason: "no Lambda function URL request context"}
	}
	return Principal(ev.RequestContext)
}
