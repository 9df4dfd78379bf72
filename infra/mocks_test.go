package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/internals"
)

// The fake account every mocked ARN lives in, and recognisable fake
// secrets: tests search every resource's inputs for them.
const (
	testRegion  = "eu-west-1"
	testAccount = "123456789012"
	fakeKey     = "sk-FAKE-wrapi-infra-test-7f3a9c1e5b2d"
	fakeOrg     = "org-FAKEwrapiInfraOrg42"
)

// mocks records every registered resource and answers with its inputs
// plus the computed attributes the program reads (ARNs, the URL, the
// memcached endpoint), shaped like AWS's.
type mocks struct {
	mu        sync.Mutex
	resources []pulumi.MockResourceArgs
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	m.resources = append(m.resources, args)
	m.mu.Unlock()

	out := args.Inputs.Copy()
	name := args.Name
	if n, ok := args.Inputs["name"]; ok && n.IsString() {
		name = n.StringValue()
	}
	set := func(k, v string) { out[resource.PropertyKey(k)] = resource.NewStringProperty(v) }
	arn := func(service, rest string) {
		set("arn", fmt.Sprintf("arn:aws:%s:%s:%s:%s", service, testRegion, testAccount, rest))
	}
	switch args.TypeToken {
	case "aws:dynamodb/table:Table":
		arn("dynamodb", "table/"+name)
	case "aws:secretsmanager/secret:Secret":
		arn("secretsmanager", "secret:"+name+"-AbCdEf")
	case "aws:lambda/function:Function":
		arn("lambda", "function:"+name)
	case "aws:lambda/functionUrl:FunctionUrl":
		set("functionUrl", "https://"+args.Name+".lambda-url."+testRegion+".on.aws/")
	case "aws:cloudwatch/logGroup:LogGroup":
		arn("logs", "log-group:"+name)
	case "aws:cloudwatch/eventRule:EventRule":
		arn("events", "rule/"+name)
		set("name", name)
	case "aws:iam/role:Role":
		set("arn", "arn:aws:iam::"+testAccount+":role/"+args.Name)
	case "aws:iam/policy:Policy":
		set("arn", "arn:aws:iam::"+testAccount+":policy/"+args.Name)
	case "aws:elasticache/subnetGroup:SubnetGroup":
		set("name", name)
	case "aws:elasticache/cluster:Cluster":
		set("configurationEndpoint", args.Inputs["clusterId"].StringValue()+".x1y2z3.cfg.euw1.cache.amazonaws.com:11211")
	}
	return args.Name + "_id", out, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	if args.Token == "aws:index/getAvailabilityZones:getAvailabilityZones" {
		return resource.NewPropertyMapFromMap(map[string]any{
			"names":   []any{testRegion + "a", testRegion + "b", testRegion + "c"},
			"zoneIds": []any{"euw1-az1", "euw1-az2", "euw1-az3"},
		}), nil
	}
	return args.Args, nil
}

// baseConfig is a complete stage configuration with the fake secrets
// stored encrypted and Lambda packages in a temporary directory.
func baseConfig(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"aws:region":               testRegion,
		"wrapi:openaiApiKey":       fakeKey,
		"wrapi:openaiOrganization": fakeOrg,
		"wrapi:artifactDir":        testArtifacts(t),
	}
}

var defaultSecretKeys = []string{"wrapi:openaiApiKey", "wrapi:openaiOrganization", "wrapi:openaiProject"}

// testArtifacts writes a small zip per function (no make build needed).
func testArtifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, fn := range []string{fnProxy, fnAdmin, fnReaper} {
		f, err := os.Create(filepath.Join(dir, fn+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		w := zip.NewWriter(f)
		e, err := w.Create("bootstrap")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(e, "#!/bin/sh\n# fake %s\n", fn)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// withConfig passes stack configuration the way the Pulumi CLI does
// (PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS end up in RunInfo), without
// touching the process environment.
func withConfig(cfg map[string]string, secretKeys []string) pulumi.RunOption {
	return func(ri *pulumi.RunInfo) {
		ri.Config = cfg
		ri.ConfigSecretKeys = secretKeys
	}
}

// deployed is one run of the program under mocks.
type deployed struct {
	t     *testing.T
	stage *Stage
	res   []pulumi.MockResourceArgs
}

func deploy(t *testing.T, stack string, cfg map[string]string) (deployed, error) {
	return deployWith(t, stack, cfg, defaultSecretKeys)
}

func deployWith(t *testing.T, stack string, cfg map[string]string, secretKeys []string) (deployed, error) {
	t.Helper()
	m := &mocks{}
	var s *Stage
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		var err error
		s, err = createInfrastructure(ctx)
		return err
	}, pulumi.WithMocks("wrapi", stack, m), withConfig(cfg, secretKeys))
	m.mu.Lock()
	defer m.mu.Unlock()
	return deployed{t: t, stage: s, res: append([]pulumi.MockResourceArgs(nil), m.resources...)}, err
}

func mustDeploy(t *testing.T, stack string, cfg map[string]string) deployed {
	t.Helper()
	d, err := deploy(t, stack, cfg)
	if err != nil {
		t.Fatalf("deploy %s: %v", stack, err)
	}
	return d
}

func (d deployed) ofType(token string) []pulumi.MockResourceArgs {
	var out []pulumi.MockResourceArgs
	for _, r := range d.res {
		if r.TypeToken == token {
			out = append(out, r)
		}
	}
	return out
}

// one returns the resource of type token and logical name, failing the
// test unless there is exactly one.
func (d deployed) one(token, name string) pulumi.MockResourceArgs {
	d.t.Helper()
	var found []pulumi.MockResourceArgs
	for _, r := range d.ofType(token) {
		if r.Name == name {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		d.t.Fatalf("%d resources %s named %s; have %v", len(found), token, name, d.names())
	}
	return found[0]
}

func (d deployed) names() []string {
	var n []string
	for _, r := range d.res {
		n = append(n, r.TypeToken+" "+r.Name)
	}
	sort.Strings(n)
	return n
}

// awaitString resolves an output of the stage after the run.
func awaitString(t *testing.T, o pulumi.StringOutput) string {
	t.Helper()
	r, err := internals.UnsafeAwaitOutput(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Known {
		t.Fatal("output unknown")
	}
	s, _ := r.Value.(string)
	return s
}

// prop walks an input property path (object keys), unwrapping secrets
// and outputs; ok is false when a step is absent.
func prop(m resource.PropertyMap, path ...string) (resource.PropertyValue, bool) {
	v := resource.NewObjectProperty(m)
	for _, k := range path {
		v = unwrap(v)
		if !v.IsObject() {
			return resource.PropertyValue{}, false
		}
		next, ok := v.ObjectValue()[resource.PropertyKey(k)]
		if !ok || next.IsNull() {
			return resource.PropertyValue{}, false
		}
		v = next
	}
	return unwrap(v), true
}

func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput():
			v = v.OutputValue().Element
		default:
			return v
		}
	}
}

// str returns the string at path, "" when absent.
func str(m resource.PropertyMap, path ...string) string {
	v, ok := prop(m, path...)
	if !ok || !v.IsString() {
		return ""
	}
	return v.StringValue()
}

func num(m resource.PropertyMap, path ...string) float64 {
	v, ok := prop(m, path...)
	if !ok || !v.IsNumber() {
		return -1
	}
	return v.NumberValue()
}

func boolean(m resource.PropertyMap, path ...string) (bool, bool) {
	v, ok := prop(m, path...)
	if !ok || !v.IsBool() {
		return false, false
	}
	return v.BoolValue(), true
}

func strs(m resource.PropertyMap, path ...string) []string {
	v, ok := prop(m, path...)
	if !ok || !v.IsArray() {
		return nil
	}
	var out []string
	for _, e := range v.ArrayValue() {
		if e = unwrap(e); e.IsString() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

// containsString reports whether s occurs in any string anywhere in v
// (secrets, outputs, arrays, objects, asset text and paths included).
func containsString(v resource.PropertyValue, s string) bool {
	v = unwrap(v)
	switch {
	case v.IsString():
		return strings.Contains(v.StringValue(), s)
	case v.IsArray():
		for _, e := range v.ArrayValue() {
			if containsString(e, s) {
				return true
			}
		}
	case v.IsObject():
		for k, e := range v.ObjectValue() {
			if strings.Contains(string(k), s) || containsString(e, s) {
				return true
			}
		}
	case v.IsAsset():
		a := v.AssetValue()
		return strings.Contains(a.Text, s) || strings.Contains(a.Path, s) || strings.Contains(a.URI, s)
	case v.IsArchive():
		a := v.ArchiveValue()
		return strings.Contains(a.Path, s) || strings.Contains(a.URI, s)
	}
	return false
}

// iamPolicy is a parsed IAM policy; Action and Resource may be a string
// or a list in IAM JSON, so they are decoded loosely.
type iamPolicy struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    any
		Resource  any
		Condition map[string]map[string]any
	}
}

func parsePolicy(t *testing.T, doc string) iamPolicy {
	t.Helper()
	var p iamPolicy
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, doc)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("policy version %q", p.Version)
	}
	return p
}

func anyStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// grants flattens a policy into "effect action on resource" lines,
// sorted, so a test compares a role's whole policy with one list.
func (p iamPolicy) grants() []string {
	var out []string
	for _, s := range p.Statement {
		for _, a := range anyStrings(s.Action) {
			for _, r := range anyStrings(s.Resource) {
				out = append(out, s.Effect+" "+a+" on "+r)
			}
		}
	}
	sort.Strings(out)
	return out
}
