package main

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The Lambda functions, each deployed from dist/<name>.zip (make build).
const (
	fnProxy  = "proxy"
	fnAdmin  = "admin"
	fnReaper = "reaper"
)

// artifact is one function's deployment package: the zip make build
// wrote, and its SHA-256 in the form Lambda reports (CodeSha256, base64).
// The hash is the function's sourceCodeHash: make build zips
// reproducibly, so an unchanged build hashes the same and is not
// redeployed.
type artifact struct {
	Path   string
	SHA256 string
}

// artifactDir resolves wrapi:artifactDir: an absolute path as is, a
// relative one against the project root (the directory of Pulumi.yaml,
// which the Pulumi CLI passes to the program), or against the working
// directory when there is none (tests, older CLIs).
func artifactDir(dir, root string) string {
	if filepath.IsAbs(dir) || root == "" {
		return filepath.Clean(dir)
	}
	return filepath.Join(root, dir)
}

// loadArtifacts hashes dir/<name>.zip for each name; a missing or
// unreadable zip is an error that says to run make build.
func loadArtifacts(dir string, names ...string) (map[string]artifact, error) {
	out := make(map[string]artifact, len(names))
	var errs []error
	for _, n := range names {
		p := filepath.Join(dir, n+".zip")
		sum, err := sha256File(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("infra: Lambda package %s: %w (run `make build` first, or set wrapi:artifactDir)", p, err))
			continue
		}
		out[n] = artifact{Path: p, SHA256: sum}
	}
	return out, errors.Join(errs...)
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}
