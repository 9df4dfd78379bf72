package main

import (
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

type mocks struct {
	mu        sync.Mutex
	resources []pulumi.MockResourceArgs
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	m.resources = append(m.resources, args)
	m.mu.Unlock()
	return args.Name + "_id", args.Inputs, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	return args.Args, nil
}

func TestStageUnderMocks(t *testing.T) {
	for _, tc := range []struct {
		stack    string
		prodLike bool
	}{{"dev", false}, {"prod", true}} {
		t.Run(tc.stack, func(t *testing.T) {
			m := &mocks{}
			var got *Stage
			err := pulumi.RunErr(func(ctx *pulumi.Context) error {
				s, err := createInfrastructure(ctx)
				got = s
				return err
			}, pulumi.WithMocks("wrapi", tc.stack, m))
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("no stage returned")
			}
			done := make(chan struct{})
			got.ProdLike.ApplyT(func(p bool) error {
				if p != tc.prodLike {
					t.Errorf("ProdLike(%s) = %v, want %v", tc.stack, p, tc.prodLike)
				}
				close(done)
				return nil
			})
			<-done
			got.RequireLimit.ApplyT(func(r bool) error {
				if !r {
					t.Errorf("deployed stage %s must require a limit by default", tc.stack)
				}
				return nil
			})
			m.mu.Lock()
			defer m.mu.Unlock()
			found := false
			for _, r := range m.resources {
				if r.TypeToken == "wrapi:index:Stage" && r.Name == "wrapi-"+tc.stack {
					found = true
				}
			}
			if !found {
				t.Errorf("component wrapi:index:Stage named wrapi-%s not registered; got %v", tc.stack, m.resources)
			}
		})
	}
}

func TestStageNameValidated(t *testing.T) {
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		_, err := createInfrastructure(ctx)
		return err
	}, pulumi.WithMocks("wrapi", "Bad_Stage!", &mocks{}))
	if err == nil {
		t.Fatal("a stage name that cannot be part of AWS resource names must be refused")
	}
}
