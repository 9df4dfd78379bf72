package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wrapi-dev/wrapi/pkg/store"
	"github.com/wrapi-dev/wrapi/pkg/store/sqlite"
	"github.com/wrapi-dev/wrapi/pkg/store/storetest"
)

func TestConformanceFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "wrapi.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storetest.Options{})
}
