package main

import (
	"encoding/json"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// What each principal may do. Every list is the exact set of DynamoDB
// calls its code makes (pkg/store/dynamo, pkg/cache/dynamocache): a call
// added there needs its action added here, and the mocks tests pin these
// lists.
var (
	// proxyStoreActions (pkg/store/dynamo): reserve (conditional
	// PutItem/UpdateItem, consistent BatchGetItem of limits), settle and
	// release (UpdateItem, DeleteItem of the open marker), records
	// (PutItem, UpdateItem of the daily aggregate), key lookup (GetItem),
	// listings (Query).
	proxyStoreActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem",
		"dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem",
	}
	// adminStoreActions: the proxy's, plus BatchWriteItem (DeleteLimit
	// deletes the limit's counters in batches).
	adminStoreActions = append(slicesClone(proxyStoreActions), "dynamodb:BatchWriteItem")
	// cacheTableActions (pkg/cache/dynamocache): Get/GetMulti (GetItem,
	// BatchGetItem), Set/Add (PutItem; BatchWriteItem for the chunks of a
	// large entry), Delete (DeleteItem; BatchWriteItem for chunks). The
	// admin function's cache flush is a Set of a new generation.
	cacheTableActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem",
		"dynamodb:GetItem", "dynamodb:PutItem",
	}
	// reaperTableActions (Store.ReleaseExpired): find expired open markers
	// (Query), read the reservation (GetItem), move its state and lower
	// its counters (UpdateItem), remove the marker (DeleteItem).
	reaperTableActions = []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	// logActions: the log group exists (this program creates it), so the
	// roles get no logs:CreateLogGroup.
	logActions = []string{"logs:CreateLogStream", "logs:PutLogEvents"}
	// eniActions: what AWSLambdaVPCAccessExecutionRole grants a function
	// in a VPC (minus logs). EC2 supports no resource-level permissions
	// for the Describe calls and Lambda creates the ENIs before their ARNs
	// exist, so AWS requires Resource "*" here: the only "*" in wrapi's
	// policies.
	eniActions = []string{
		"ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
		"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses",
	}
	// adminReadActions: what the admins policy adds for wrapi dashboard
	// and wrapi usage reading the store table directly.
	adminReadActions = []string{"dynamodb:GetItem", "dynamodb:Query"}
)

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// policyDocument is an IAM policy; statement marshals in IAM's field
// order and spelling.
type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal,omitempty"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource,omitempty"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// grant is one Allow statement whose resources are outputs (ARNs of
// resources this program creates).
type grant struct {
	sid       string
	actions   []string
	resources []pulumi.StringInput
	condition map[string]map[string]string
}

// policyJSON renders grants as an IAM policy document once every ARN is
// known.
func policyJSON(grants ...grant) pulumi.StringOutput {
	var arns []any
	for _, g := range grants {
		for _, r := range g.resources {
			arns = append(arns, r)
		}
	}
	return pulumi.All(arns...).ApplyT(func(vs []any) (string, error) {
		doc := policyDocument{Version: "2012-10-17"}
		i := 0
		for _, g := range grants {
			st := statement{Sid: g.sid, Effect: "Allow", Action: g.actions, Condition: g.condition}
			for range g.resources {
				st.Resource = append(st.Resource, vs[i].(string))
				i++
			}
			doc.Statement = append(doc.Statement, st)
		}
		b, err := json.Marshal(doc)
		return string(b), err
	}).(pulumi.StringOutput)
}

// lambdaAssumeRolePolicy lets only the Lambda service assume a function's
// execution role.
var lambdaAssumeRolePolicy = mustJSON(policyDocument{
	Version: "2012-10-17",
	Statement: []statement{{
		Effect:    "Allow",
		Principal: map[string]string{"Service": "lambda.amazonaws.com"},
		Action:    []string{"sts:AssumeRole"},
	}},
})

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // static documents only
	}
	return string(b)
}
