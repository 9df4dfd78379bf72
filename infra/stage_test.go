package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

const (
	tFunction   = "aws:lambda/function:Function"
	tURL        = "aws:lambda/functionUrl:FunctionUrl"
	tPermission = "aws:lambda/permission:Permission"
	tTable      = "aws:dynamodb/table:Table"
	tLogGroup   = "aws:cloudwatch/logGroup:LogGroup"
	tRole       = "aws:iam/role:Role"
	tRolePolicy = "aws:iam/rolePolicy:RolePolicy"
	tPolicy     = "aws:iam/policy:Policy"
	tSecret     = "aws:secretsmanager/secret:Secret"
	tSecretVer  = "aws:secretsmanager/secretVersion:SecretVersion"
	tRule       = "aws:cloudwatch/eventRule:EventRule"
	tTarget     = "aws:cloudwatch/eventTarget:EventTarget"
	tStage      = "wrapi:index:Stage"
)

// arns of the fake account, as the mocks shape them.
func tableARN(name string) string {
	return "arn:aws:dynamodb:" + testRegion + ":" + testAccount + ":table/" + name
}
func functionARN(name string) string {
	return "arn:aws:lambda:" + testRegion + ":" + testAccount + ":function:" + name
}
func logStreamsARN(fn string) string {
	return "arn:aws:logs:" + testRegion + ":" + testAccount + ":log-group:/aws/lambda/" + fn + ":*"
}
func secretARN(stage string) string {
	return "arn:aws:secretsmanager:" + testRegion + ":" + testAccount + ":secret:wrapi-" + stage + "-openai-AbCdEf"
}

// allow renders what parsePolicy(...).grants() should list.
func allow(actions []string, resources ...string) []string {
	var out []string
	for _, a := range actions {
		for _, r := range resources {
			out = append(out, "Allow "+a+" on "+r)
		}
	}
	return out
}

func sorted(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	sort.Strings(out)
	return out
}

func typeCounts(d deployed) map[string]int {
	c := map[string]int{}
	for _, r := range d.res {
		c[r.TypeToken]++
	}
	return c
}

// The default stage: exactly these resources, nothing in a VPC.
var defaultStageTypes = map[string]int{
	tStage: 1, tSecret: 1, tSecretVer: 1, tTable: 2,
	tLogGroup: 3, tRole: 3, tRolePolicy: 3, tFunction: 3,
	tURL: 1, tRule: 1, tTarget: 1, tPermission: 1, tPolicy: 2,
}

func TestDefaultStage(t *testing.T) {
	for _, tc := range []struct {
		stack    string
		prodLike bool
	}{{"dev", false}, {"prod", true}} {
		t.Run(tc.stack, func(t *testing.T) {
			cfg := baseConfig(t)
			d := mustDeploy(t, tc.stack, cfg)
			p := "wrapi-" + tc.stack

			if got := typeCounts(d); !reflect.DeepEqual(got, defaultStageTypes) {
				t.Errorf("resources by type:\n got %v\nwant %v", got, defaultStageTypes)
			}

			// Names: every logical name, and every physical name set,
			// carries the stage; every resource is the component's child.
			d.one(tStage, p)
			componentURN := "urn:pulumi:" + tc.stack + "::wrapi::" + tStage + "::" + p
			for _, r := range d.res {
				if !strings.HasPrefix(r.Name, p) {
					t.Errorf("%s %s: name does not carry the stage", r.TypeToken, r.Name)
				}
				if n := str(r.Inputs, "name"); n != "" && !strings.Contains(n, p) {
					t.Errorf("%s %s: physical name %q does not carry the stage", r.TypeToken, r.Name, n)
				}
			}
			for _, r := range d.res {
				if r.TypeToken != tStage && r.RegisterRPC.GetParent() != componentURN {
					t.Errorf("%s %s: parent %q, want the Stage component", r.TypeToken, r.Name, r.RegisterRPC.GetParent())
				}
			}

			// The function URL: IAM-authenticated, streaming, no CORS.
			url := d.one(tURL, p+"-proxy-url")
			if got := str(url.Inputs, "authorizationType"); got != "AWS_IAM" {
				t.Errorf("URL authorizationType %q, want AWS_IAM", got)
			}
			if got := str(url.Inputs, "invokeMode"); got != "RESPONSE_STREAM" {
				t.Errorf("URL invokeMode %q, want RESPONSE_STREAM", got)
			}
			if got := str(url.Inputs, "functionName"); got != p+"-proxy" {
				t.Errorf("URL functionName %q", got)
			}
			if _, ok := prop(url.Inputs, "cors"); ok {
				t.Errorf("CORS block present without wrapi:corsOrigins: %v", url.Inputs["cors"])
			}
			for _, perm := range d.ofType(tPermission) {
				if str(perm.Inputs, "principal") == "*" {
					t.Errorf("IAM stage grants %s to everyone", str(perm.Inputs, "action"))
				}
			}

			// Functions: runtime, architecture, handler, package and hash,
			// sizing, log group first.
			for _, fc := range []struct {
				fn              string
				memory, timeout float64
			}{{fnProxy, 512, 900}, {fnAdmin, 512, 60}, {fnReaper, 128, 50}} {
				name := p + "-" + fc.fn
				f := d.one(tFunction, name)
				zip := filepath.Join(cfg["wrapi:artifactDir"], fc.fn+".zip")
				for k, want := range map[string]string{
					"name": name, "runtime": "provided.al2023", "handler": "bootstrap",
					"sourceCodeHash": fileSHA256(t, zip), "role": "arn:aws:iam::" + testAccount + ":role/" + name + "-role",
				} {
					if got := str(f.Inputs, k); got != want {
						t.Errorf("%s %s = %q, want %q", name, k, got, want)
					}
				}
				if got := strs(f.Inputs, "architectures"); !slices.Equal(got, []string{"arm64"}) {
					t.Errorf("%s architectures %v, want [arm64]", name, got)
				}
				if code, ok := prop(f.Inputs, "code"); !ok || !code.IsArchive() || code.ArchiveValue().Path != zip {
					t.Errorf("%s code = %v, want the archive %s", name, f.Inputs["code"], zip)
				}
				if m, to := num(f.Inputs, "memorySize"), num(f.Inputs, "timeout"); m != fc.memory || to != fc.timeout {
					t.Errorf("%s memory %v timeout %v, want %v %v", name, m, to, fc.memory, fc.timeout)
				}
				for _, absent := range []string{"vpcConfig", "reservedConcurrentExecutions"} {
					if _, ok := prop(f.Inputs, absent); ok {
						t.Errorf("%s has %s by default", name, absent)
					}
				}
				deps := f.RegisterRPC.GetDependencies()
				logURN := "urn:pulumi:" + tc.stack + "::wrapi::" + tStage + "$" + tLogGroup + "::" + name + "-logs"
				if !slices.Contains(deps, logURN) {
					t.Errorf("%s does not depend on its log group (%s); deps %v", name, logURN, deps)
				}
				lg := d.one(tLogGroup, name+"-logs")
				if got := str(lg.Inputs, "name"); got != "/aws/lambda/"+name {
					t.Errorf("log group %q, want /aws/lambda/%s", got, name)
				}
				if got := num(lg.Inputs, "retentionInDays"); got != 30 {
					t.Errorf("%s log retention %v, want 30", name, got)
				}
			}

			// Environment: exactly the contract's variables per function.
			env := func(fn string) map[string]string {
				v, _ := prop(d.one(tFunction, p+"-"+fn).Inputs, "environment", "variables")
				out := map[string]string{}
				for k, e := range v.ObjectValue() {
					out[string(k)] = unwrap(e).StringValue()
				}
				return out
			}
			common := map[string]string{"WRAPI_STAGE": tc.stack, "WRAPI_TABLE": p + "-store", "WRAPI_LOG_LEVEL": "info"}
			cache := map[string]string{"WRAPI_CACHE": "dynamodb", "WRAPI_CACHE_TABLE": p + "-cache"}
			wantEnv := map[string]map[string]string{
				fnProxy: merged(common, cache, map[string]string{
					"WRAPI_SECRET_ARN": secretARN(tc.stack), "WRAPI_UPSTREAM": "https://api.openai.com/v1",
					"WRAPI_AUTH": "iam", "WRAPI_REQUIRE_LIMIT": "true", "WRAPI_TIMEZONE": "UTC",
					"WRAPI_CACHE_DEFAULT": "off", "WRAPI_CACHE_TTL": "24h0m0s", "WRAPI_CACHE_SCOPE": "project",
					"WRAPI_UPSTREAM_TIMEOUT": "12m0s",
				}),
				fnAdmin:  merged(common, cache, map[string]string{"WRAPI_TIMEZONE": "UTC"}),
				fnReaper: common,
			}
			for fn, want := range wantEnv {
				if got := env(fn); !reflect.DeepEqual(got, want) {
					t.Errorf("%s environment:\n got %v\nwant %v", fn, got, want)
				}
			}

			// Tables: the functions/README.md contract.
			for _, tt := range []struct {
				name      string
				pitr, del bool
			}{{p + "-store", true, tc.prodLike}, {p + "-cache", false, false}} {
				tb := d.one(tTable, tt.name).Inputs
				for k, want := range map[string]string{"name": tt.name, "billingMode": "PAY_PER_REQUEST", "hashKey": "pk", "rangeKey": "sk"} {
					if got := str(tb, k); got != want {
						t.Errorf("table %s %s = %q, want %q", tt.name, k, got, want)
					}
				}
				attrs, _ := prop(tb, "attributes")
				var got []string
				for _, a := range attrs.ArrayValue() {
					got = append(got, str(a.ObjectValue(), "name")+":"+str(a.ObjectValue(), "type"))
				}
				if !slices.Equal(got, []string{"pk:S", "sk:S"}) {
					t.Errorf("table %s attributes %v", tt.name, got)
				}
				if str(tb, "ttl", "attributeName") != "expires_at" {
					t.Errorf("table %s TTL attribute %q", tt.name, str(tb, "ttl", "attributeName"))
				}
				for _, c := range []struct {
					path []string
					want bool
				}{
					{[]string{"ttl", "enabled"}, true},
					{[]string{"serverSideEncryption", "enabled"}, true},
					{[]string{"pointInTimeRecovery", "enabled"}, tt.pitr},
					{[]string{"deletionProtectionEnabled"}, tt.del},
				} {
					if got, ok := boolean(tb, c.path...); !ok || got != c.want {
						t.Errorf("table %s %s = %v (set %v), want %v", tt.name, strings.Join(c.path, "."), got, ok, c.want)
					}
				}
				for _, absent := range []string{"globalSecondaryIndexes", "localSecondaryIndexes", "readCapacity", "writeCapacity"} {
					if v, ok := prop(tb, absent); ok && !(v.IsArray() && len(v.ArrayValue()) == 0) {
						t.Errorf("table %s has %s", tt.name, absent)
					}
				}
			}

			// The secret: JSON of the configured key and organization,
			// a Pulumi secret; prod keeps a deleted secret for 30 days.
			sv := d.one(tSecretVer, p+"-openai-value")
			if raw := sv.Inputs["secretString"]; !raw.ContainsSecrets() {
				t.Error("secretString is not a Pulumi secret")
			}
			var sec map[string]string
			if err := json.Unmarshal([]byte(str(sv.Inputs, "secretString")), &sec); err != nil ||
				!reflect.DeepEqual(sec, map[string]string{"api_key": fakeKey, "organization": fakeOrg}) {
				t.Errorf("secret JSON = %v (%v)", sec, err)
			}
			if got, want := num(d.one(tSecret, p+"-openai").Inputs, "recoveryWindowInDays"), map[bool]float64{true: 30, false: 7}[tc.prodLike]; got != want {
				t.Errorf("secret recovery window %v, want %v", got, want)
			}

			// The reaper: every minute, through a permission scoped to
			// the rule.
			rule := d.one(tRule, p+"-reaper-schedule")
			if got := str(rule.Inputs, "scheduleExpression"); got != "rate(1 minute)" {
				t.Errorf("reaper schedule %q", got)
			}
			target := d.one(tTarget, p+"-reaper-target")
			if str(target.Inputs, "rule") != p+"-reaper-schedule" || str(target.Inputs, "arn") != functionARN(p+"-reaper") {
				t.Errorf("reaper target rule %q arn %q", str(target.Inputs, "rule"), str(target.Inputs, "arn"))
			}
			perm := d.one(tPermission, p+"-reaper-invoke")
			ruleARN := "arn:aws:events:" + testRegion + ":" + testAccount + ":rule/" + p + "-reaper-schedule"
			for k, want := range map[string]string{
				"action": "lambda:InvokeFunction", "principal": "events.amazonaws.com",
				"sourceArn": ruleARN, "function": p + "-reaper",
			} {
				if got := str(perm.Inputs, k); got != want {
					t.Errorf("reaper permission %s = %q, want %q", k, got, want)
				}
			}

			// Stack outputs.
			proxyURL := "https://" + p + "-proxy-url.lambda-url." + testRegion + ".on.aws/"
			for _, o := range []struct {
				name string
				got  pulumi.StringOutput
				want string
			}{
				{"proxyUrl", d.stage.ProxyURL, proxyURL},
				{"adminFunctionName", d.stage.AdminFunctionName, p + "-admin"},
				{"storeTableName", d.stage.StoreTableName, p + "-store"},
				{"cacheTableName", d.stage.CacheTableName, p + "-cache"},
				{"usersPolicyArn", d.stage.UsersPolicyArn, "arn:aws:iam::" + testAccount + ":policy/" + p + "-users"},
				{"adminsPolicyArn", d.stage.AdminsPolicyArn, "arn:aws:iam::" + testAccount + ":policy/" + p + "-admins"},
				{"connectCommand", d.stage.ConnectCommand, "wrapi connect --stage " + tc.stack + " --url " + proxyURL},
				{"adminConnectCommand", d.stage.AdminConnectCommand, "wrapi connect --stage " + tc.stack + " --url " + proxyURL +
					" --region " + testRegion + " --admin-function " + p + "-admin --save"},
			} {
				if got := awaitString(t, o.got); got != o.want {
					t.Errorf("output %s = %q, want %q", o.name, got, o.want)
				}
			}
		})
	}
}

func merged(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// The OpenAI key and organization appear in no resource input but the
// secret version's (where they are a Pulumi secret), in every shape of
// stage.
func TestSecretsOnlyInTheSecretVersion(t *testing.T) {
	for _, tc := range []struct {
		stack string
		extra map[string]string
	}{
		{"dev", nil},
		{"prod", nil},
		{"dev", map[string]string{"wrapi:cache": "memcached"}},
		{"dev", map[string]string{"wrapi:auth": "keys", "wrapi:corsOrigins": "*"}},
	} {
		t.Run(tc.stack+fmtMap(tc.extra), func(t *testing.T) {
			d := mustDeploy(t, tc.stack, merged(baseConfig(t), tc.extra))
			seen := 0
			for _, r := range d.res {
				for _, secret := range []string{fakeKey, fakeOrg} {
					found := containsString(resource.NewObjectProperty(r.Inputs), secret)
					if r.TypeToken == tSecretVer {
						seen++
						if !found {
							t.Errorf("the secret version does not hold %q", secret)
						}
						continue
					}
					if found {
						t.Errorf("%s %s: a configured secret appears in its inputs", r.TypeToken, r.Name)
					}
				}
			}
			if seen == 0 {
				t.Fatal("no secret version")
			}
			for _, o := range []pulumi.StringOutput{d.stage.ProxyURL, d.stage.SecretArn, d.stage.ConnectCommand} {
				if s := awaitString(t, o); strings.Contains(s, fakeKey) {
					t.Errorf("an output holds the key: %q", s)
				}
			}
		})
	}
}

func fmtMap(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, strings.TrimPrefix(k, "wrapi:")+"="+v)
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return ""
	}
	return "/" + strings.Join(parts, ",")
}

// rolePolicy returns the parsed inline policy of function fn's role, and
// checks the role trusts only Lambda.
func rolePolicy(t *testing.T, d deployed, p, fn string) iamPolicy {
	t.Helper()
	role := d.one(tRole, p+"-"+fn+"-role")
	trust := parsePolicy(t, str(role.Inputs, "assumeRolePolicy"))
	if len(trust.Statement) != 1 || !reflect.DeepEqual(anyStrings(trust.Statement[0].Action), []string{"sts:AssumeRole"}) {
		t.Errorf("%s role trust policy: %+v", fn, trust)
	}
	var policies []pulumi.MockResourceArgs
	for _, rp := range d.ofType(tRolePolicy) {
		if str(rp.Inputs, "role") == role.Name+"_id" {
			policies = append(policies, rp)
		}
	}
	if len(policies) != 1 {
		t.Fatalf("%s role has %d inline policies", fn, len(policies))
	}
	return parsePolicy(t, str(policies[0].Inputs, "policy"))
}

// checkLeastPrivilege: no wildcard action; a "*" resource only for the
// VPC network-interface calls, which AWS grants on no narrower resource.
func checkLeastPrivilege(t *testing.T, who string, pol iamPolicy) {
	t.Helper()
	for _, s := range pol.Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: statement effect %q", who, s.Effect)
		}
		acts := anyStrings(s.Action)
		for _, a := range acts {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %q", who, a)
			}
		}
		for _, r := range anyStrings(s.Resource) {
			if r == "*" && !slices.Equal(sortedCopy(acts), sortedCopy(eniActions)) {
				t.Errorf("%s: resource * for %v", who, acts)
			}
		}
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

var (
	wantProxyStore = []string{"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	wantAdminStore = append(slices.Clone(wantProxyStore), "dynamodb:BatchWriteItem")
	wantCache      = []string{"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"}
	wantReaper     = []string{"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	wantLogs       = []string{"logs:CreateLogStream", "logs:PutLogEvents"}
	wantENI        = []string{"ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses"}
)

// Each role lists exactly its own actions on its own resources.
func TestRolePoliciesLeastPrivilege(t *testing.T) {
	for _, tc := range []struct {
		name, stack, cache string
	}{{"dev", "dev", ""}, {"prod", "prod", ""}, {"memcached", "dev", "memcached"}, {"cache off", "qa", "off"}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			if tc.cache != "" {
				cfg["wrapi:cache"] = tc.cache
			}
			d := mustDeploy(t, tc.stack, cfg)
			p := "wrapi-" + tc.stack
			store, cache := tableARN(p+"-store"), tableARN(p+"-cache")
			want := map[string][]string{
				fnProxy:  sorted(allow(wantProxyStore, store), allow([]string{"secretsmanager:GetSecretValue"}, secretARN(tc.stack)), allow(wantLogs, logStreamsARN(p+"-proxy"))),
				fnAdmin:  sorted(allow(wantAdminStore, store), allow(wantLogs, logStreamsARN(p+"-admin"))),
				fnReaper: sorted(allow(wantReaper, store), allow(wantLogs, logStreamsARN(p+"-reaper"))),
			}
			switch tc.cache {
			case "": // dynamodb
				want[fnProxy] = sorted(want[fnProxy], allow(wantCache, cache))
				want[fnAdmin] = sorted(want[fnAdmin], allow(wantCache, cache))
			case "memcached":
				want[fnProxy] = sorted(want[fnProxy], allow(wantENI, "*"))
				want[fnAdmin] = sorted(want[fnAdmin], allow(wantENI, "*"))
			}
			for fn, w := range want {
				pol := rolePolicy(t, d, p, fn)
				if got := pol.grants(); !slices.Equal(got, w) {
					t.Errorf("%s role policy:\n got %s\nwant %s", fn, strings.Join(got, "\n     "), strings.Join(w, "\n     "))
				}
				checkLeastPrivilege(t, fn, pol)
			}
		})
	}
}

// The two managed policies for people.
func TestPeoplePolicies(t *testing.T) {
	d := mustDeploy(t, "dev", baseConfig(t))
	users := parsePolicy(t, str(d.one(tPolicy, "wrapi-dev-users").Inputs, "policy"))
	proxy := functionARN("wrapi-dev-proxy")
	if got, want := users.grants(), sorted(allow([]string{"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}, proxy)); !slices.Equal(got, want) {
		t.Errorf("users policy %v, want %v", got, want)
	}
	conds := map[string]map[string]map[string]any{}
	for _, s := range users.Statement {
		for _, a := range anyStrings(s.Action) {
			conds[a] = s.Condition
		}
	}
	if got := conds["lambda:InvokeFunctionUrl"]["StringEquals"]["lambda:FunctionUrlAuthType"]; got != "AWS_IAM" {
		t.Errorf("InvokeFunctionUrl condition %v, want StringEquals lambda:FunctionUrlAuthType AWS_IAM", conds["lambda:InvokeFunctionUrl"])
	}
	// A user must not invoke the proxy directly with an event (and an
	// identity) of their own making: InvokeFunction only via the URL.
	if got := conds["lambda:InvokeFunction"]["Bool"]["lambda:InvokedViaFunctionUrl"]; got != "true" {
		t.Errorf("InvokeFunction condition %v, want Bool lambda:InvokedViaFunctionUrl true", conds["lambda:InvokeFunction"])
	}
	checkLeastPrivilege(t, "users", users)

	admins := parsePolicy(t, str(d.one(tPolicy, "wrapi-dev-admins").Inputs, "policy"))
	want := sorted(allow([]string{"lambda:InvokeFunction"}, functionARN("wrapi-dev-admin")), allow([]string{"dynamodb:GetItem", "dynamodb:Query"}, tableARN("wrapi-dev-store")))
	if got := admins.grants(); !slices.Equal(got, want) {
		t.Errorf("admins policy %v, want %v", got, want)
	}
	checkLeastPrivilege(t, "admins", admins)
}

func TestMemcachedOption(t *testing.T) {
	cfg := baseConfig(t)
	cfg["wrapi:cache"] = "memcached"
	cfg["wrapi:azs"] = "3"
	cfg["wrapi:cacheNodeType"] = "cache.t4g.small"
	d := mustDeploy(t, "dev", cfg)
	p := "wrapi-dev"

	got := typeCounts(d)
	for typ, n := range map[string]int{
		"aws:ec2/vpc:Vpc": 1, "aws:ec2/subnet:Subnet": 4, "aws:ec2/internetGateway:InternetGateway": 1,
		"aws:ec2/eip:Eip": 1, "aws:ec2/natGateway:NatGateway": 1, "aws:ec2/routeTable:RouteTable": 2,
		"aws:ec2/routeTableAssociation:RouteTableAssociation": 4, "aws:ec2/vpcEndpoint:VpcEndpoint": 1,
		"aws:ec2/securityGroup:SecurityGroup": 2, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 1,
		"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": 2,
		"aws:elasticache/subnetGroup:SubnetGroup":                 1, "aws:elasticache/cluster:Cluster": 1,
		tTable: 1, // the store; no cache table
	} {
		if got[typ] != n {
			t.Errorf("%d %s, want %d", got[typ], typ, n)
		}
	}

	ep := d.one("aws:ec2/vpcEndpoint:VpcEndpoint", p+"-dynamodb")
	if str(ep.Inputs, "serviceName") != "com.amazonaws."+testRegion+".dynamodb" || str(ep.Inputs, "vpcEndpointType") != "Gateway" {
		t.Errorf("DynamoDB endpoint %v", ep.Inputs)
	}
	cl := d.one("aws:elasticache/cluster:Cluster", p+"-memcached")
	if str(cl.Inputs, "engine") != "memcached" || str(cl.Inputs, "nodeType") != "cache.t4g.small" || num(cl.Inputs, "port") != 11211 {
		t.Errorf("cluster %v", cl.Inputs)
	}
	if sgs := strs(cl.Inputs, "securityGroupIds"); !slices.Equal(sgs, []string{p + "-memcached-sg_id"}) {
		t.Errorf("cluster security groups %v", sgs)
	}
	private := d.one("aws:ec2/routeTable:RouteTable", p+"-private-rt")
	routes, _ := prop(private.Inputs, "routes")
	if len(routes.ArrayValue()) != 1 || str(routes.ArrayValue()[0].ObjectValue(), "natGatewayId") != p+"-nat_id" {
		t.Errorf("private route table routes %v, want 0.0.0.0/0 via the NAT", routes)
	}

	// Security groups: memcached accepts 11211 from the Lambdas only;
	// the Lambdas may open 11211 to memcached and 443 out, nothing else.
	in := d.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", p+"-memcached-in").Inputs
	if str(in, "securityGroupId") != p+"-memcached-sg_id" || str(in, "referencedSecurityGroupId") != p+"-lambda-sg_id" ||
		num(in, "fromPort") != 11211 || num(in, "toPort") != 11211 || str(in, "ipProtocol") != "tcp" || str(in, "cidrIpv4") != "" {
		t.Errorf("memcached ingress %v", in)
	}
	var egress []string
	for _, r := range d.ofType("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") {
		e := r.Inputs
		egress = append(egress, fmt.Sprintf("%s %s %g-%g %s%s", str(e, "securityGroupId"), str(e, "ipProtocol"),
			num(e, "fromPort"), num(e, "toPort"), str(e, "referencedSecurityGroupId"), str(e, "cidrIpv4")))
	}
	sort.Strings(egress)
	wantEgress := []string{p + "-lambda-sg_id tcp 11211-11211 " + p + "-memcached-sg_id", p + "-lambda-sg_id tcp 443-443 0.0.0.0/0"}
	if !slices.Equal(egress, wantEgress) {
		t.Errorf("egress rules %v, want %v", egress, wantEgress)
	}

	// Proxy and admin in the private subnets; the reaper outside.
	wantSubnets := []string{p + "-private-0_id", p + "-private-1_id", p + "-private-2_id"}
	for _, fn := range []string{fnProxy, fnAdmin} {
		f := d.one(tFunction, p+"-"+fn).Inputs
		if got := strs(f, "vpcConfig", "subnetIds"); !slices.Equal(got, wantSubnets) {
			t.Errorf("%s subnets %v, want %v", fn, got, wantSubnets)
		}
		if got := strs(f, "vpcConfig", "securityGroupIds"); !slices.Equal(got, []string{p + "-lambda-sg_id"}) {
			t.Errorf("%s security groups %v", fn, got)
		}
		if got := str(f, "environment", "variables", "WRAPI_MEMCACHED_ADDR"); got != p+"-cache.x1y2z3.cfg.euw1.cache.amazonaws.com:11211" {
			t.Errorf("%s WRAPI_MEMCACHED_ADDR %q", fn, got)
		}
		if got := str(f, "environment", "variables", "WRAPI_CACHE"); got != "memcached" {
			t.Errorf("%s WRAPI_CACHE %q", fn, got)
		}
		if got := str(f, "environment", "variables", "WRAPI_CACHE_TABLE"); got != "" {
			t.Errorf("%s WRAPI_CACHE_TABLE %q with memcached", fn, got)
		}
	}
	if _, ok := prop(d.one(tFunction, p+"-reaper").Inputs, "vpcConfig"); ok {
		t.Error("the reaper is in the VPC")
	}
	// Lambdas in a VPC need their ENIs created first: the function
	// depends on its role's policy.
	deps := d.one(tFunction, p+"-proxy").RegisterRPC.GetDependencies()
	if !slices.Contains(deps, "urn:pulumi:dev::wrapi::"+tStage+"$"+tRolePolicy+"::"+p+"-proxy-policy") {
		t.Errorf("proxy does not depend on its role policy: %v", deps)
	}
}

func TestCacheOff(t *testing.T) {
	cfg := baseConfig(t)
	cfg["wrapi:cache"] = "off"
	d := mustDeploy(t, "dev", cfg)
	want := maps.Clone(defaultStageTypes)
	want[tTable] = 1 // the store only
	if got := typeCounts(d); !reflect.DeepEqual(got, want) {
		t.Errorf("resources %v, want %v", got, want)
	}
	f := d.one(tFunction, "wrapi-dev-proxy").Inputs
	if str(f, "environment", "variables", "WRAPI_CACHE") != "off" || str(f, "environment", "variables", "WRAPI_CACHE_TABLE") != "" {
		t.Errorf("proxy cache env %v", f["environment"])
	}
	if awaitString(t, d.stage.CacheTableName) != "" {
		t.Error("cacheTableName set without a cache table")
	}
}

func TestCORS(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{`["https://app.example.com","http://localhost:3000"]`, []string{"https://app.example.com", "http://localhost:3000"}},
		{"https://a.example.com, https://b.example.com", []string{"https://a.example.com", "https://b.example.com"}},
	} {
		cfg := baseConfig(t)
		cfg["wrapi:corsOrigins"] = tc.value
		d := mustDeploy(t, "dev", cfg)
		url := d.one(tURL, "wrapi-dev-proxy-url").Inputs
		if got := strs(url, "cors", "allowOrigins"); !slices.Equal(got, tc.want) {
			t.Errorf("corsOrigins %s: allowOrigins %v, want %v", tc.value, got, tc.want)
		}
		if got := strs(url, "cors", "allowMethods"); !slices.Equal(got, []string{"GET", "POST"}) {
			t.Errorf("allowMethods %v", got)
		}
		if h := strs(url, "cors", "allowHeaders"); !slices.Contains(h, "x-amz-security-token") || !slices.Contains(h, "authorization") {
			t.Errorf("allowHeaders %v lacks the SigV4 headers", h)
		}
	}
}

func TestAuthKeys(t *testing.T) {
	cfg := baseConfig(t)
	cfg["wrapi:auth"] = "keys"
	d := mustDeploy(t, "dev", cfg)
	url := d.one(tURL, "wrapi-dev-proxy-url").Inputs
	if got := str(url, "authorizationType"); got != "NONE" {
		t.Errorf("keys: URL auth %q, want NONE", got)
	}
	if got := str(url, "invokeMode"); got != "RESPONSE_STREAM" {
		t.Errorf("keys: invokeMode %q", got)
	}
	pub := d.one(tPermission, "wrapi-dev-proxy-public-url").Inputs
	if str(pub, "action") != "lambda:InvokeFunctionUrl" || str(pub, "principal") != "*" || str(pub, "functionUrlAuthType") != "NONE" {
		t.Errorf("public URL permission %v", pub)
	}
	inv := d.one(tPermission, "wrapi-dev-proxy-public-invoke").Inputs
	if str(inv, "action") != "lambda:InvokeFunction" || str(inv, "function") != "wrapi-dev-proxy" {
		t.Errorf("public invoke permission %v", inv)
	}
	if got := str(d.one(tFunction, "wrapi-dev-proxy").Inputs, "environment", "variables", "WRAPI_AUTH"); got != "keys" {
		t.Errorf("WRAPI_AUTH %q", got)
	}
}

func TestSettings(t *testing.T) {
	cfg := merged(baseConfig(t), map[string]string{
		"wrapi:reservedConcurrency": "5", "wrapi:memory": "1024", "wrapi:timeout": "300",
		"wrapi:logRetentionDays": "7", "wrapi:deletionProtection": "false", "wrapi:requireLimit": "false",
		"wrapi:timeZone": "Europe/Madrid", "wrapi:cacheDefault": "true", "wrapi:cacheTtl": "1h",
		"wrapi:upstream": "https://eu.api.openai.com/v1/", "wrapi:allowUnmetered": "batches,fine_tuning",
		"wrapi:logLevel": "debug",
	})
	d := mustDeploy(t, "prod", cfg)
	f := d.one(tFunction, "wrapi-prod-proxy").Inputs
	if num(f, "reservedConcurrentExecutions") != 5 || num(f, "memorySize") != 1024 || num(f, "timeout") != 300 {
		t.Errorf("proxy sizing %v %v %v", f["reservedConcurrentExecutions"], f["memorySize"], f["timeout"])
	}
	for k, want := range map[string]string{
		"WRAPI_UPSTREAM_TIMEOUT": "2m30s", "WRAPI_REQUIRE_LIMIT": "false", "WRAPI_TIMEZONE": "Europe/Madrid",
		"WRAPI_CACHE_DEFAULT": "on", "WRAPI_CACHE_TTL": "1h0m0s", "WRAPI_UPSTREAM": "https://eu.api.openai.com/v1",
		"WRAPI_ALLOW_UNMETERED": "batches,fine_tuning", "WRAPI_LOG_LEVEL": "debug",
	} {
		if got := str(f, "environment", "variables", k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, ok := prop(d.one(tFunction, "wrapi-prod-admin").Inputs, "reservedConcurrentExecutions"); ok {
		t.Error("reserved concurrency applied to the admin function")
	}
	for _, lg := range d.ofType(tLogGroup) {
		if num(lg.Inputs, "retentionInDays") != 7 {
			t.Errorf("%s retention %v", lg.Name, lg.Inputs["retentionInDays"])
		}
	}
	if got, _ := boolean(d.one(tTable, "wrapi-prod-store").Inputs, "deletionProtectionEnabled"); got {
		t.Error("wrapi:deletionProtection=false left prod protected")
	}
}

func TestMissingArtifacts(t *testing.T) {
	cfg := baseConfig(t)
	cfg["wrapi:artifactDir"] = t.TempDir()
	d, err := deploy(t, "dev", cfg)
	if err == nil {
		t.Fatal("deployed without Lambda packages")
	}
	for _, want := range []string{"make build", "proxy.zip", "admin.zip", "reaper.zip"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(d.res) > 0 {
		t.Errorf("resources registered before the error: %v", d.names())
	}
}

func TestConfigErrorsStopTheDeployment(t *testing.T) {
	cfg := baseConfig(t)
	cfg["wrapi:cache"] = "redis"
	cfg["wrapi:memory"] = "64"
	d, err := deploy(t, "dev", cfg)
	if err == nil {
		t.Fatal("bad config deployed")
	}
	for _, want := range []string{"wrapi:cache", "wrapi:memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if len(d.res) > 0 {
		t.Errorf("resources registered: %v", d.names())
	}

	// A key stored in plaintext in Pulumi.<stage>.yaml is refused.
	if _, err := deployWith(t, "dev", baseConfig(t), []string{"wrapi:openaiOrganization"}); err == nil || !strings.Contains(err.Error(), "--secret wrapi:openaiApiKey") {
		t.Errorf("plaintext key: err = %v", err)
	}
}

func TestStageNameValidated(t *testing.T) {
	for _, stack := range []string{"Bad_Stage!", "dev.1", "a-very-long-stage-name-over-24", "1dev"} {
		if _, err := deploy(t, stack, baseConfig(t)); err == nil || !strings.Contains(err.Error(), "stage name") {
			t.Errorf("stage %q: err = %v, want a stage name error", stack, err)
		}
	}
}

func TestArtifactDir(t *testing.T) {
	for _, tc := range []struct{ dir, root, want string }{
		{"dist", "/repo", "/repo/dist"},
		{"../build/out", "/repo", "/build/out"},
		{"/abs/dist", "/repo", "/abs/dist"},
		{"dist", "", "dist"},
	} {
		if got := artifactDir(tc.dir, tc.root); got != tc.want {
			t.Errorf("artifactDir(%q, %q) = %q, want %q", tc.dir, tc.root, got, tc.want)
		}
	}
}

func TestUpstreamTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout int
		want    string
	}{{900, "12m0s"}, {300, "2m30s"}, {60, "30s"}, {1, "1s"}} {
		if got := upstreamTimeout(tc.timeout).String(); got != tc.want {
			t.Errorf("upstreamTimeout(%d) = %s, want %s", tc.timeout, got, tc.want)
		}
	}
}
