package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/wrapi-dev/wrapi/functions/internal/secret"
	"github.com/wrapi-dev/wrapi/pkg/cache"
	"github.com/wrapi-dev/wrapi/pkg/cache/dynamocache"
	"github.com/wrapi-dev/wrapi/pkg/cache/memcached"
	"github.com/wrapi-dev/wrapi/pkg/store/dynamo"
)

// Needs says what a function uses beyond the store.
type Needs struct {
	// Secret loads the OpenAI credentials (only the proxy's role may).
	Secret bool
	// Cache opens the response cache (proxy, admin for cache.flush).
	Cache bool
}

// Open builds the AWS clients, the store, and what needs asks for. It
// runs once per container (cold start).
func Open(ctx context.Context, c Config, needs Needs) (Deps, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return Deps{}, fmt.Errorf("aws config: %w", err)
	}
	ddb := dynamodb.NewFromConfig(awsCfg)
	st, err := dynamo.New(dynamo.Config{Client: ddb, Table: c.Table})
	if err != nil {
		return Deps{}, err
	}
	d := Deps{Store: st}
	if needs.Cache {
		if d.Cache, err = c.openCache(ddb); err != nil {
			return Deps{}, err
		}
	}
	if needs.Secret {
		if c.SecretARN == "" {
			return Deps{}, errors.New("WRAPI_SECRET_ARN is required")
		}
		l := &secret.Loader{Client: secretsmanager.NewFromConfig(awsCfg), ARN: c.SecretARN}
		if d.Credentials, err = l.Get(ctx); err != nil {
			return Deps{}, err
		}
	}
	return d, nil
}

func (c Config) openCache(ddb *dynamodb.Client) (*cache.Cache, error) {
	var b cache.Backend
	switch c.Cache {
	case "memcached":
		mc, err := memcached.New(memcached.Config{Servers: c.MemcachedAddr})
		if err != nil {
			return nil, err
		}
		b = mc
	case "dynamodb":
		db, err := dynamocache.New(dynamocache.Config{Client: ddb, Table: c.CacheTable})
		if err != nil {
			return nil, err
		}
		b = db
	default:
		return nil, nil
	}
	return cache.New(b, cache.Options{Namespace: c.Stage}), nil
}

// Boot is a function's cold start: configuration from the environment,
// then Open. The logger is usable even when err is set.
func Boot(ctx context.Context, needs Needs) (Config, Deps, *slog.Logger, error) {
	cfg, err := FromEnv(os.Getenv)
	logger := cfg.Logger()
	if err != nil {
		return cfg, Deps{}, logger, fmt.Errorf("invalid configuration: %w", err)
	}
	deps, err := Open(ctx, cfg, needs)
	if err != nil {
		return cfg, Deps{}, logger, fmt.Errorf("cold start: %w", err)
	}
	return cfg, deps, logger, nil
}
