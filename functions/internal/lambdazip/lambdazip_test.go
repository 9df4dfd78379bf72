package lambdazip

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestZipIsReproducibleAndRunnable(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	payload := bytes.Repeat([]byte("\x7fELF fake binary "), 1000)
	if err := os.WriteFile(bin, payload, 0o700); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	if err := Bootstrap(bin, a); err != nil {
		t.Fatal(err)
	}
	// Different mtime and mode on disk must not change the zip.
	later := time.Now().Add(time.Hour)
	os.Chtimes(bin, later, later)
	os.Chmod(bin, 0o777)
	if err := Bootstrap(bin, b); err != nil {
		t.Fatal(err)
	}
	za, _ := os.ReadFile(a)
	zb, _ := os.ReadFile(b)
	if !bytes.Equal(za, zb) {
		t.Fatal("two zips of the same binary differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(za), int64(len(za)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode().Perm() != 0o755 {
		t.Fatalf("want one executable bootstrap, got %+v", zr.File)
	}
	rc, _ := zr.File[0].Open()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, payload) {
		t.Fatal("content changed")
	}
}
