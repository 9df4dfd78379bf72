package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dynamodb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lambda"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/secretsmanager"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Stage is one deployment of wrapi (an AWS account: dev, prod): the
// component every per-stage resource is parented to, named wrapi-<stage>,
// as is every child (wrapi-<stage>-proxy, wrapi-<stage>-store, …).
//
// What it builds (infra/README.md has the table with costs): the OpenAI
// secret, the store table and (wrapi:cache=dynamodb) the cache table, the
// proxy Lambda behind a function URL (AWS_IAM, RESPONSE_STREAM), the admin
// Lambda (no URL), the reaper Lambda on a one-minute schedule, one log
// group and one execution role per function, and the users and admins
// managed policies to attach to people. wrapi:cache=memcached adds a VPC,
// a NAT gateway and ElastiCache (network.go).
type Stage struct {
	pulumi.ResourceState

	Name         pulumi.StringOutput `pulumi:"name"`
	RequireLimit pulumi.BoolOutput   `pulumi:"requireLimit"`
	ProdLike     pulumi.BoolOutput   `pulumi:"prodLike"`

	ProxyURL          pulumi.StringOutput `pulumi:"proxyUrl"`
	ProxyFunctionName pulumi.StringOutput `pulumi:"proxyFunctionName"`
	AdminFunctionName pulumi.StringOutput `pulumi:"adminFunctionName"`
	StoreTableName    pulumi.StringOutput `pulumi:"storeTableName"`
	// CacheTableName is "" unless wrapi:cache is dynamodb.
	CacheTableName  pulumi.StringOutput `pulumi:"cacheTableName"`
	SecretArn       pulumi.StringOutput `pulumi:"secretArn"`
	UsersPolicyArn  pulumi.StringOutput `pulumi:"usersPolicyArn"`
	AdminsPolicyArn pulumi.StringOutput `pulumi:"adminsPolicyArn"`
	// ConnectCommand is the line to hand to users:
	// wrapi connect --stage <stage> --url <proxy URL>.
	ConnectCommand pulumi.StringOutput `pulumi:"connectCommand"`
	// AdminConnectCommand also saves the region and the admin function
	// in ~/.config/wrapi/stages.json, for wrapi limits/usage/keys/cache
	// --stage <stage>.
	AdminConnectCommand pulumi.StringOutput `pulumi:"adminConnectCommand"`
}

// StageArgs are a stage's validated settings and its Lambda packages
// (fnProxy, fnAdmin, fnReaper → artifact).
type StageArgs struct {
	Config    Config
	Artifacts map[string]artifact
}

var stageName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// IsProdLike reports whether a stage name denotes production, which turns
// on deletion protection and stricter defaults.
func IsProdLike(name string) bool {
	n := strings.ToLower(name)
	return n == "prod" || n == "production" || strings.HasPrefix(n, "prod-") || strings.HasSuffix(n, "-prod")
}

// stageTags marks every taggable resource with its stage, for cost
// allocation and for finding what a stack owns.
func stageTags(stage string) pulumi.StringMap {
	return pulumi.StringMap{"wrapi:stage": pulumi.String(stage), "wrapi:managed-by": pulumi.String("pulumi")}
}

// function is one deployed Lambda with what its neighbours need.
type function struct {
	fn       *lambda.Function
	logGroup *cloudwatch.LogGroup
}

// NewStage registers the Stage component and its resources.
func NewStage(ctx *pulumi.Context, args StageArgs, opts ...pulumi.ResourceOption) (*Stage, error) {
	cfg := args.Config
	if !stageName.MatchString(cfg.Stage) {
		return nil, fmt.Errorf("stage name %q must be 1–24 lowercase letters, digits or dashes, starting with a letter (it is part of AWS resource names)", cfg.Stage)
	}
	for _, n := range []string{fnProxy, fnAdmin, fnReaper} {
		if args.Artifacts[n].Path == "" {
			return nil, fmt.Errorf("infra: no Lambda package for %s", n)
		}
	}
	prefix := "wrapi-" + cfg.Stage
	s := &Stage{}
	if err := ctx.RegisterComponentResource("wrapi:index:Stage", prefix, s, opts...); err != nil {
		return nil, err
	}
	// with: the options of every child (parented to the stage), plus extra.
	with := func(extra ...pulumi.ResourceOption) []pulumi.ResourceOption {
		return append([]pulumi.ResourceOption{pulumi.Parent(s)}, extra...)
	}
	tags := stageTags(cfg.Stage)

	// The OpenAI key: stored once, read by the proxy at cold start. The
	// value stays a Pulumi secret (encrypted in the state file).
	secret, err := secretsmanager.NewSecret(ctx, prefix+"-openai", &secretsmanager.SecretArgs{
		Description:          pulumi.String("wrapi " + cfg.Stage + ": OpenAI API key and organization (JSON), read by the proxy"),
		RecoveryWindowInDays: pulumi.Int(recoveryWindow(cfg)),
		Tags:                 tags,
	}, with()...)
	if err != nil {
		return nil, err
	}
	if _, err := secretsmanager.NewSecretVersion(ctx, prefix+"-openai-value", &secretsmanager.SecretVersionArgs{
		SecretId:     secret.ID(),
		SecretString: pulumi.ToSecret(pulumi.String(string(cfg.OpenAISecret))).(pulumi.StringOutput),
	}, with()...); err != nil {
		return nil, err
	}

	store, err := newTable(ctx, prefix+"-store", cfg, true, with()...)
	if err != nil {
		return nil, err
	}
	var cacheTable *dynamodb.Table
	if cfg.Cache == CacheDynamoDB {
		// The cache is disposable: no backups, no deletion protection.
		if cacheTable, err = newTable(ctx, prefix+"-cache", cfg, false, with()...); err != nil {
			return nil, err
		}
	}
	var net *network
	if cfg.Cache == CacheMemcached {
		if net, err = newMemcachedNetwork(ctx, s, cfg, with()...); err != nil {
			return nil, err
		}
	}

	// Environment (functions/README.md is the contract). Secrets never go
	// here: the proxy gets the secret's ARN.
	common := pulumi.StringMap{
		"WRAPI_STAGE":     pulumi.String(cfg.Stage),
		"WRAPI_TABLE":     store.Name,
		"WRAPI_LOG_LEVEL": pulumi.String(cfg.LogLevel),
	}
	cacheEnv := pulumi.StringMap{"WRAPI_CACHE": pulumi.String(cfg.Cache)}
	switch {
	case cacheTable != nil:
		cacheEnv["WRAPI_CACHE_TABLE"] = cacheTable.Name
	case net != nil:
		cacheEnv["WRAPI_MEMCACHED_ADDR"] = net.MemcachedAddr
	}
	proxyEnv := merge(common, cacheEnv, pulumi.StringMap{
		"WRAPI_SECRET_ARN":    secret.Arn,
		"WRAPI_UPSTREAM":      pulumi.String(cfg.Upstream),
		"WRAPI_AUTH":          pulumi.String(cfg.Auth),
		"WRAPI_REQUIRE_LIMIT": pulumi.String(strconv.FormatBool(cfg.RequireLimit)),
		"WRAPI_TIMEZONE":      pulumi.String(cfg.TimeZone),
		"WRAPI_CACHE_DEFAULT": pulumi.String(onOff(cfg.CacheDefault)),
		"WRAPI_CACHE_TTL":     pulumi.String(cfg.CacheTTL.String()),
		"WRAPI_CACHE_SCOPE":   pulumi.String(cfg.CacheScope),
		// The upstream call plus the drain after a client disconnect
		// must end before Lambda kills the function.
		"WRAPI_UPSTREAM_TIMEOUT": pulumi.String(upstreamTimeout(cfg.Timeout).String()),
	})
	if len(cfg.AllowUnmetered) > 0 {
		proxyEnv["WRAPI_ALLOW_UNMETERED"] = pulumi.String(strings.Join(cfg.AllowUnmetered, ","))
	}
	adminEnv := merge(common, cacheEnv, pulumi.StringMap{"WRAPI_TIMEZONE": pulumi.String(cfg.TimeZone)})

	proxyGrants := []grant{
		{sid: "Store", actions: proxyStoreActions, resources: []pulumi.StringInput{store.Arn}},
		{sid: "OpenAIKey", actions: []string{"secretsmanager:GetSecretValue"}, resources: []pulumi.StringInput{secret.Arn}},
	}
	adminGrants := []grant{{sid: "Store", actions: adminStoreActions, resources: []pulumi.StringInput{store.Arn}}}
	if cacheTable != nil {
		cache := grant{sid: "Cache", actions: cacheTableActions, resources: []pulumi.StringInput{cacheTable.Arn}}
		proxyGrants = append(proxyGrants, cache)
		adminGrants = append(adminGrants, cache)
	}
	proxy, err := newFunction(ctx, functionSpec{
		cfg: cfg, name: fnProxy, code: args.Artifacts[fnProxy], env: proxyEnv, net: net,
		memory: cfg.Memory, timeout: cfg.Timeout, reserved: cfg.ReservedConcurrency,
		description: "wrapi " + cfg.Stage + ": the OpenAI-compatible proxy (function URL)",
		grants:      proxyGrants,
	}, with)
	if err != nil {
		return nil, err
	}
	admin, err := newFunction(ctx, functionSpec{
		cfg: cfg, name: fnAdmin, code: args.Artifacts[fnAdmin], env: adminEnv, net: net,
		memory: cfg.Memory, timeout: 60,
		description: "wrapi " + cfg.Stage + ": admin commands (lambda:InvokeFunction)",
		grants:      adminGrants,
	}, with)
	if err != nil {
		return nil, err
	}
	// The reaper only touches the store, so it stays out of the VPC.
	reaper, err := newFunction(ctx, functionSpec{
		cfg: cfg, name: fnReaper, code: args.Artifacts[fnReaper], env: common,
		memory: 128, timeout: 50, // under the one-minute period
		description: "wrapi " + cfg.Stage + ": releases expired budget reservations (every minute)",
		grants:      []grant{{sid: "Store", actions: reaperTableActions, resources: []pulumi.StringInput{store.Arn}}},
	}, with)
	if err != nil {
		return nil, err
	}

	url, err := newProxyURL(ctx, prefix, cfg, proxy.fn, with)
	if err != nil {
		return nil, err
	}
	if err := newReaperSchedule(ctx, prefix, cfg, reaper.fn, with); err != nil {
		return nil, err
	}

	// Policies for people (attach to groups, roles or permission sets).
	users, err := iam.NewPolicy(ctx, prefix+"-users", &iam.PolicyArgs{
		Description: pulumi.String("wrapi " + cfg.Stage + ": use the proxy through its function URL (wrapi connect, pkg/client)"),
		Policy: policyJSON(
			grant{
				sid: "InvokeProxyURL", actions: []string{"lambda:InvokeFunctionUrl"},
				resources: []pulumi.StringInput{proxy.fn.Arn},
				condition: map[string]map[string]string{"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
			},
			// Since October 2025 a function URL call also needs
			// lambda:InvokeFunction. InvokeFunction has no
			// FunctionUrlAuthType key; InvokedViaFunctionUrl keeps users
			// from invoking the proxy directly with an event they wrote
			// (and an identity they chose).
			grant{
				sid: "InvokeProxyViaURLOnly", actions: []string{"lambda:InvokeFunction"},
				resources: []pulumi.StringInput{proxy.fn.Arn},
				condition: map[string]map[string]string{"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
			},
		),
		Tags: tags,
	}, with()...)
	if err != nil {
		return nil, err
	}
	admins, err := iam.NewPolicy(ctx, prefix+"-admins", &iam.PolicyArgs{
		Description: pulumi.String("wrapi " + cfg.Stage + ": run admin commands and read usage (wrapi limits, usage, keys, cache, dashboard)"),
		Policy: policyJSON(
			grant{sid: "InvokeAdmin", actions: []string{"lambda:InvokeFunction"}, resources: []pulumi.StringInput{admin.fn.Arn}},
			grant{sid: "ReadUsage", actions: adminReadActions, resources: []pulumi.StringInput{store.Arn}},
		),
		Tags: tags,
	}, with()...)
	if err != nil {
		return nil, err
	}

	s.Name = pulumi.String(cfg.Stage).ToStringOutput()
	s.RequireLimit = pulumi.Bool(cfg.RequireLimit).ToBoolOutput()
	s.ProdLike = pulumi.Bool(IsProdLike(cfg.Stage)).ToBoolOutput()
	s.ProxyURL = url
	s.ProxyFunctionName = proxy.fn.Name
	s.AdminFunctionName = admin.fn.Name
	s.StoreTableName = store.Name
	s.CacheTableName = pulumi.String("").ToStringOutput()
	if cacheTable != nil {
		s.CacheTableName = cacheTable.Name
	}
	s.SecretArn = secret.Arn
	s.UsersPolicyArn = users.Arn
	s.AdminsPolicyArn = admins.Arn
	s.ConnectCommand = pulumi.Sprintf("wrapi connect --stage %s --url %s", cfg.Stage, url)
	s.AdminConnectCommand = pulumi.Sprintf("wrapi connect --stage %s --url %s --region %s --admin-function %s --save",
		cfg.Stage, url, cfg.Region, admin.fn.Name)
	if err := ctx.RegisterResourceOutputs(s, pulumi.Map{
		"name": s.Name, "requireLimit": s.RequireLimit, "prodLike": s.ProdLike,
		"proxyUrl": s.ProxyURL, "proxyFunctionName": s.ProxyFunctionName, "adminFunctionName": s.AdminFunctionName,
		"storeTableName": s.StoreTableName, "cacheTableName": s.CacheTableName, "secretArn": s.SecretArn,
		"usersPolicyArn": s.UsersPolicyArn, "adminsPolicyArn": s.AdminsPolicyArn,
		"connectCommand": s.ConnectCommand, "adminConnectCommand": s.AdminConnectCommand,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// recoveryWindow: a deleted prod secret can be restored for 30 days; a
// dev one for 7 (the minimum above immediate deletion).
func recoveryWindow(cfg Config) int {
	if cfg.DeletionProtection {
		return 30
	}
	return 7
}

// newTable creates a table of the functions/README.md contract: on-demand,
// pk/sk strings, no secondary index, TTL on expires_at, encrypted with the
// AWS-managed KMS key. backups turns on point-in-time recovery and
// (on protected stages) deletion protection.
func newTable(ctx *pulumi.Context, name string, cfg Config, backups bool, opts ...pulumi.ResourceOption) (*dynamodb.Table, error) {
	return dynamodb.NewTable(ctx, name, &dynamodb.TableArgs{
		Name:        pulumi.String(name),
		BillingMode: pulumi.String("PAY_PER_REQUEST"),
		HashKey:     pulumi.String("pk"),
		RangeKey:    pulumi.String("sk"),
		Attributes: dynamodb.TableAttributeArray{
			dynamodb.TableAttributeArgs{Name: pulumi.String("pk"), Type: pulumi.String("S")},
			dynamodb.TableAttributeArgs{Name: pulumi.String("sk"), Type: pulumi.String("S")},
		},
		Ttl:                       &dynamodb.TableTtlArgs{AttributeName: pulumi.String("expires_at"), Enabled: pulumi.Bool(true)},
		PointInTimeRecovery:       &dynamodb.TablePointInTimeRecoveryArgs{Enabled: pulumi.Bool(backups)},
		ServerSideEncryption:      &dynamodb.TableServerSideEncryptionArgs{Enabled: pulumi.Bool(true)},
		DeletionProtectionEnabled: pulumi.Bool(backups && cfg.DeletionProtection),
		Tags:                      stageTags(cfg.Stage),
	}, opts...)
}

// functionSpec is one Lambda: its package, environment, sizing and the
// grants of its execution role (logging is added by newFunction).
type functionSpec struct {
	cfg         Config
	name        string
	description string
	code        artifact
	env         pulumi.StringMap
	memory      int
	timeout     int
	reserved    *int
	net         *network // nil: outside any VPC
	grants      []grant
}

// newFunction creates a Lambda named wrapi-<stage>-<name>, its log group
// /aws/lambda/<function> with the stage's retention, and its own
// execution role whose inline policy lists only spec.grants, writing to
// its own log group, and (in a VPC) the ENI calls.
func newFunction(ctx *pulumi.Context, spec functionSpec, with func(...pulumi.ResourceOption) []pulumi.ResourceOption) (*function, error) {
	cfg := spec.cfg
	fnName := "wrapi-" + cfg.Stage + "-" + spec.name
	tags := stageTags(cfg.Stage)

	logs, err := cloudwatch.NewLogGroup(ctx, fnName+"-logs", &cloudwatch.LogGroupArgs{
		Name:            pulumi.String("/aws/lambda/" + fnName),
		RetentionInDays: pulumi.Int(cfg.LogRetention),
		Tags:            tags,
	}, with()...)
	if err != nil {
		return nil, err
	}
	role, err := iam.NewRole(ctx, fnName+"-role", &iam.RoleArgs{
		Description:      pulumi.String("execution role of " + fnName),
		AssumeRolePolicy: pulumi.String(lambdaAssumeRolePolicy),
		Tags:             tags,
	}, with()...)
	if err != nil {
		return nil, err
	}
	grants := append(slicesCloneGrants(spec.grants), grant{
		sid: "Logs", actions: logActions,
		// <group ARN>:* is the form the Lambda console grants: it covers
		// the group's streams (CreateLogStream, PutLogEvents), nothing else.
		resources: []pulumi.StringInput{pulumi.Sprintf("%s:*", logs.Arn)},
	})
	if spec.net != nil {
		grants = append(grants, grant{sid: "VPCNetworkInterfaces", actions: eniActions, resources: []pulumi.StringInput{pulumi.String("*")}})
	}
	policy, err := iam.NewRolePolicy(ctx, fnName+"-policy", &iam.RolePolicyArgs{
		Role:   role.ID(),
		Policy: policyJSON(grants...),
	}, with()...)
	if err != nil {
		return nil, err
	}

	args := &lambda.FunctionArgs{
		Name:           pulumi.String(fnName),
		Description:    pulumi.String(spec.description),
		Role:           role.Arn,
		Runtime:        pulumi.String("provided.al2023"),
		Architectures:  pulumi.StringArray{pulumi.String("arm64")},
		Handler:        pulumi.String("bootstrap"),
		Code:           pulumi.NewFileArchive(spec.code.Path),
		SourceCodeHash: pulumi.String(spec.code.SHA256),
		MemorySize:     pulumi.Int(spec.memory),
		Timeout:        pulumi.Int(spec.timeout),
		Environment:    &lambda.FunctionEnvironmentArgs{Variables: spec.env},
		Tags:           tags,
	}
	if spec.reserved != nil {
		args.ReservedConcurrentExecutions = pulumi.Int(*spec.reserved)
	}
	if spec.net != nil {
		args.VpcConfig = &lambda.FunctionVpcConfigArgs{
			SubnetIds:        spec.net.SubnetIDs,
			SecurityGroupIds: pulumi.StringArray{spec.net.LambdaSG},
		}
	}
	// The log group first (or Lambda creates one that never expires), the
	// policy first (or the first invocations cannot log or read).
	fn, err := lambda.NewFunction(ctx, fnName, args, with(pulumi.DependsOn([]pulumi.Resource{logs, policy}))...)
	if err != nil {
		return nil, err
	}
	return &function{fn: fn, logGroup: logs}, nil
}

func slicesCloneGrants(g []grant) []grant { return append([]grant(nil), g...) }

// newProxyURL creates the proxy's function URL: AWS_IAM (or NONE with
// wrapi:auth=keys, where wrapi checks virtual keys itself), response
// streaming, and CORS only when wrapi:corsOrigins is set.
func newProxyURL(ctx *pulumi.Context, prefix string, cfg Config, proxy *lambda.Function, with func(...pulumi.ResourceOption) []pulumi.ResourceOption) (pulumi.StringOutput, error) {
	authType := "AWS_IAM"
	if cfg.Auth == AuthKeys {
		authType = "NONE"
	}
	args := &lambda.FunctionUrlArgs{
		FunctionName:      proxy.Name,
		AuthorizationType: pulumi.String(authType),
		InvokeMode:        pulumi.String("RESPONSE_STREAM"),
	}
	if len(cfg.CORSOrigins) > 0 {
		args.Cors = &lambda.FunctionUrlCorsArgs{
			AllowOrigins: pulumi.ToStringArray(cfg.CORSOrigins),
			AllowMethods: pulumi.ToStringArray([]string{"GET", "POST"}),
			AllowHeaders: pulumi.ToStringArray([]string{
				"authorization", "content-type", "openai-organization", "openai-project",
				"openai-proxy-project", "openai-proxy-caching", "openai-proxy-staging",
				"x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
			}),
			ExposeHeaders: pulumi.ToStringArray([]string{"x-request-id", "x-should-retry"}),
			MaxAge:        pulumi.Int(600),
		}
	}
	url, err := lambda.NewFunctionUrl(ctx, prefix+"-proxy-url", args, with()...)
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	if cfg.Auth == AuthKeys {
		// A NONE URL is public only through the function's resource
		// policy. pulumi-aws v6 cannot express the
		// lambda:InvokedViaFunctionUrl condition on the second
		// statement, so anyone with AWS credentials may also invoke
		// the function directly; the proxy still requires a virtual
		// key in either case.
		if _, err := lambda.NewPermission(ctx, prefix+"-proxy-public-url", &lambda.PermissionArgs{
			Function: proxy.Name, Action: pulumi.String("lambda:InvokeFunctionUrl"),
			Principal: pulumi.String("*"), FunctionUrlAuthType: pulumi.String("NONE"),
		}, with()...); err != nil {
			return pulumi.StringOutput{}, err
		}
		if _, err := lambda.NewPermission(ctx, prefix+"-proxy-public-invoke", &lambda.PermissionArgs{
			Function: proxy.Name, Action: pulumi.String("lambda:InvokeFunction"), Principal: pulumi.String("*"),
		}, with()...); err != nil {
			return pulumi.StringOutput{}, err
		}
	}
	return url.FunctionUrl, nil
}

// newReaperSchedule invokes the reaper every minute from EventBridge.
func newReaperSchedule(ctx *pulumi.Context, prefix string, cfg Config, reaper *lambda.Function, with func(...pulumi.ResourceOption) []pulumi.ResourceOption) error {
	rule, err := cloudwatch.NewEventRule(ctx, prefix+"-reaper-schedule", &cloudwatch.EventRuleArgs{
		Description:        pulumi.String("wrapi " + cfg.Stage + ": run the reaper every minute"),
		ScheduleExpression: pulumi.String("rate(1 minute)"),
		Tags:               stageTags(cfg.Stage),
	}, with()...)
	if err != nil {
		return err
	}
	perm, err := lambda.NewPermission(ctx, prefix+"-reaper-invoke", &lambda.PermissionArgs{
		Function:  reaper.Name,
		Action:    pulumi.String("lambda:InvokeFunction"),
		Principal: pulumi.String("events.amazonaws.com"),
		SourceArn: rule.Arn,
	}, with()...)
	if err != nil {
		return err
	}
	// No retries: the next run is a minute away and does the same work.
	_, err = cloudwatch.NewEventTarget(ctx, prefix+"-reaper-target", &cloudwatch.EventTargetArgs{
		Rule: rule.Name,
		Arn:  reaper.Arn,
		RetryPolicy: &cloudwatch.EventTargetRetryPolicyArgs{
			MaximumRetryAttempts: pulumi.Int(0), MaximumEventAgeInSeconds: pulumi.Int(60),
		},
	}, with(pulumi.DependsOn([]pulumi.Resource{perm}))...)
	return err
}

func merge(maps ...pulumi.StringMap) pulumi.StringMap {
	out := pulumi.StringMap{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// upstreamTimeout leaves the proxy's last three minutes (half, for short
// timeouts) to draining and settling: 900 s gives 12 min, the proxy
// function's own default.
func upstreamTimeout(timeoutSeconds int) time.Duration {
	reserve := min(180, timeoutSeconds/2)
	return time.Duration(timeoutSeconds-reserve) * time.Second
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// createInfrastructure builds the stage named by the stack from its
// validated config and exports the outputs.
func createInfrastructure(ctx *pulumi.Context) (*Stage, error) {
	cfg, err := parseConfig(ctx.Stack(), ctx)
	if err != nil {
		return nil, err
	}
	arts, err := loadArtifacts(artifactDir(cfg.ArtifactDir, ctx.RootDirectory()), fnProxy, fnAdmin, fnReaper)
	if err != nil {
		return nil, err
	}
	s, err := NewStage(ctx, StageArgs{Config: cfg, Artifacts: arts})
	if err != nil {
		return nil, err
	}
	ctx.Export("stage", s.Name)
	ctx.Export("requireLimit", s.RequireLimit)
	ctx.Export("proxyUrl", s.ProxyURL)
	ctx.Export("proxyFunctionName", s.ProxyFunctionName)
	ctx.Export("adminFunctionName", s.AdminFunctionName)
	ctx.Export("storeTableName", s.StoreTableName)
	if cfg.Cache == CacheDynamoDB {
		ctx.Export("cacheTableName", s.CacheTableName)
	}
	ctx.Export("secretArn", s.SecretArn)
	ctx.Export("usersPolicyArn", s.UsersPolicyArn)
	ctx.Export("adminsPolicyArn", s.AdminsPolicyArn)
	ctx.Export("connectCommand", s.ConnectCommand)
	ctx.Export("adminConnectCommand", s.AdminConnectCommand)
	return s, nil
}
