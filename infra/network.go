package main

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/elasticache"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// memcachedPort is the only port the Lambdas may open to the cache.
const memcachedPort = 11211

// network is what the memcached option puts the proxy and admin Lambdas
// into: private subnets, their security group, and the cache's address.
type network struct {
	SubnetIDs     pulumi.StringArray
	LambdaSG      pulumi.StringOutput
	MemcachedAddr pulumi.StringOutput
}

// newMemcachedNetwork builds the VPC that ElastiCache memcached needs
// (wrapi:cache=memcached). Lambdas in a VPC lose the internet, and the
// proxy must reach OpenAI and Secrets Manager, so this also costs a NAT
// gateway (≈ $32/month + $0.045/GB; infra/README.md). One NAT, in the
// first AZ, not one per AZ: an AZ outage there stops upstream calls until
// it recovers, for a third of the idle cost of three. DynamoDB traffic
// takes a free gateway endpoint instead of the NAT.
//
// Security groups: the Lambdas may open only memcached (11211, to the
// cache's group) and HTTPS (443, OpenAI and AWS APIs); the cache accepts
// only 11211 from the Lambdas' group. The AWS provider removes the
// default allow-all egress rule of each group it creates.
func newMemcachedNetwork(ctx *pulumi.Context, s *Stage, cfg Config, opts ...pulumi.ResourceOption) (*network, error) {
	prefix := "wrapi-" + cfg.Stage
	tags := stageTags(cfg.Stage)

	zones, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available")}, pulumi.Parent(s))
	if err != nil {
		return nil, fmt.Errorf("infra: list availability zones: %w", err)
	}
	if len(zones.Names) < cfg.AZs {
		return nil, fmt.Errorf("infra: wrapi:azs is %d but %s has %d available zones", cfg.AZs, cfg.Region, len(zones.Names))
	}
	azs := zones.Names[:cfg.AZs]

	vnet, err := ec2.NewVpc(ctx, prefix+"-vpc", &ec2.VpcArgs{
		CidrBlock:          pulumi.String("10.42.0.0/16"),
		EnableDnsHostnames: pulumi.Bool(true),
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	igw, err := ec2.NewInternetGateway(ctx, prefix+"-igw", &ec2.InternetGatewayArgs{VpcId: vnet.ID(), Tags: tags}, opts...)
	if err != nil {
		return nil, err
	}
	public, err := ec2.NewSubnet(ctx, prefix+"-public", &ec2.SubnetArgs{
		VpcId: vnet.ID(), CidrBlock: pulumi.String("10.42.0.0/24"), AvailabilityZone: pulumi.String(azs[0]), Tags: tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	publicRT, err := ec2.NewRouteTable(ctx, prefix+"-public-rt", &ec2.RouteTableArgs{
		VpcId:  vnet.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), GatewayId: igw.ID()}},
		Tags:   tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := ec2.NewRouteTableAssociation(ctx, prefix+"-public-rta", &ec2.RouteTableAssociationArgs{
		SubnetId: public.ID(), RouteTableId: publicRT.ID(),
	}, opts...); err != nil {
		return nil, err
	}
	eip, err := ec2.NewEip(ctx, prefix+"-nat-ip", &ec2.EipArgs{Domain: pulumi.String("vpc"), Tags: tags}, opts...)
	if err != nil {
		return nil, err
	}
	nat, err := ec2.NewNatGateway(ctx, prefix+"-nat", &ec2.NatGatewayArgs{
		AllocationId: eip.ID(), SubnetId: public.ID(), Tags: tags,
	}, append(opts, pulumi.DependsOn([]pulumi.Resource{igw}))...)
	if err != nil {
		return nil, err
	}
	privateRT, err := ec2.NewRouteTable(ctx, prefix+"-private-rt", &ec2.RouteTableArgs{
		VpcId:  vnet.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), NatGatewayId: nat.ID()}},
		Tags:   tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	var subnets pulumi.StringArray
	for i, az := range azs {
		sn, err := ec2.NewSubnet(ctx, fmt.Sprintf("%s-private-%d", prefix, i), &ec2.SubnetArgs{
			VpcId: vnet.ID(), CidrBlock: pulumi.Sprintf("10.42.%d.0/24", 10+i), AvailabilityZone: pulumi.String(az), Tags: tags,
		}, opts...)
		if err != nil {
			return nil, err
		}
		if _, err := ec2.NewRouteTableAssociation(ctx, fmt.Sprintf("%s-private-rta-%d", prefix, i), &ec2.RouteTableAssociationArgs{
			SubnetId: sn.ID(), RouteTableId: privateRT.ID(),
		}, opts...); err != nil {
			return nil, err
		}
		subnets = append(subnets, sn.ID())
	}
	if _, err := ec2.NewVpcEndpoint(ctx, prefix+"-dynamodb", &ec2.VpcEndpointArgs{
		VpcId:           vnet.ID(),
		ServiceName:     pulumi.Sprintf("com.amazonaws.%s.dynamodb", cfg.Region),
		VpcEndpointType: pulumi.String("Gateway"),
		RouteTableIds:   pulumi.StringArray{privateRT.ID()},
		Tags:            tags,
	}, opts...); err != nil {
		return nil, err
	}

	lambdaSG, err := ec2.NewSecurityGroup(ctx, prefix+"-lambda-sg", &ec2.SecurityGroupArgs{
		VpcId: vnet.ID(), Description: pulumi.String("wrapi " + cfg.Stage + " Lambdas: out to memcached and HTTPS only"), Tags: tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	cacheSG, err := ec2.NewSecurityGroup(ctx, prefix+"-memcached-sg", &ec2.SecurityGroupArgs{
		VpcId: vnet.ID(), Description: pulumi.String("wrapi " + cfg.Stage + " memcached: in from the Lambdas on 11211 only"), Tags: tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	if _, err := vpc.NewSecurityGroupIngressRule(ctx, prefix+"-memcached-in", &vpc.SecurityGroupIngressRuleArgs{
		SecurityGroupId: cacheSG.ID(), ReferencedSecurityGroupId: lambdaSG.ID(),
		IpProtocol: pulumi.String("tcp"), FromPort: pulumi.Int(memcachedPort), ToPort: pulumi.Int(memcachedPort),
		Description: pulumi.String("memcached from the wrapi Lambdas"),
	}, opts...); err != nil {
		return nil, err
	}
	if _, err := vpc.NewSecurityGroupEgressRule(ctx, prefix+"-lambda-to-memcached", &vpc.SecurityGroupEgressRuleArgs{
		SecurityGroupId: lambdaSG.ID(), ReferencedSecurityGroupId: cacheSG.ID(),
		IpProtocol: pulumi.String("tcp"), FromPort: pulumi.Int(memcachedPort), ToPort: pulumi.Int(memcachedPort),
		Description: pulumi.String("memcached"),
	}, opts...); err != nil {
		return nil, err
	}
	if _, err := vpc.NewSecurityGroupEgressRule(ctx, prefix+"-lambda-to-https", &vpc.SecurityGroupEgressRuleArgs{
		SecurityGroupId: lambdaSG.ID(), CidrIpv4: pulumi.String("0.0.0.0/0"),
		IpProtocol: pulumi.String("tcp"), FromPort: pulumi.Int(443), ToPort: pulumi.Int(443),
		Description: pulumi.String("OpenAI, Secrets Manager, DynamoDB (gateway endpoint)"),
	}, opts...); err != nil {
		return nil, err
	}

	subnetGroup, err := elasticache.NewSubnetGroup(ctx, prefix+"-memcached-subnets", &elasticache.SubnetGroupArgs{
		SubnetIds: subnets, Description: pulumi.String("wrapi " + cfg.Stage + " memcached"), Tags: tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	// One node: the proxy's client takes one address (WRAPI_MEMCACHED_ADDR),
	// and a cache losing its node only loses hits.
	cluster, err := elasticache.NewCluster(ctx, prefix+"-memcached", &elasticache.ClusterArgs{
		ClusterId:          pulumi.String(prefix + "-cache"),
		Engine:             pulumi.String("memcached"),
		EngineVersion:      pulumi.String("1.6.22"),
		ParameterGroupName: pulumi.String("default.memcached1.6"),
		NodeType:           pulumi.String(cfg.CacheNodeType),
		NumCacheNodes:      pulumi.Int(1),
		Port:               pulumi.Int(memcachedPort),
		SubnetGroupName:    subnetGroup.Name,
		SecurityGroupIds:   pulumi.StringArray{cacheSG.ID()},
		Tags:               tags,
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &network{
		SubnetIDs:     subnets,
		LambdaSG:      lambdaSG.ID().ToStringOutput(),
		MemcachedAddr: cluster.ConfigurationEndpoint,
	}, nil
}
