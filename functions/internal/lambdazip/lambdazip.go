// Package lambdazip writes a Lambda deployment zip that depends only on the
// bytes of its files: fixed timestamps, fixed permissions, fixed order. Two
// builds of the same binary give byte-identical zips, so Pulumi sees an
// unchanged hash and does not redeploy.
package lambdazip

import (
	"archive/zip"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// epoch is the zip format's earliest time (MS-DOS dates start in 1980).
var epoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// File is one entry: its name in the zip and where to read it.
type File struct {
	Name, Path string
	Executable bool
}

// Write writes files to w in name order.
func Write(w io.Writer, files []File) error {
	files = append([]File(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestCompression)
	})
	for _, f := range files {
		h := &zip.FileHeader{Name: filepath.ToSlash(f.Name), Method: zip.Deflate, Modified: epoch}
		mode := os.FileMode(0o644)
		if f.Executable {
			mode = 0o755
		}
		h.SetMode(mode)
		dst, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("lambdazip: %s: %w", f.Name, err)
		}
		src, err := os.Open(f.Path)
		if err != nil {
			return fmt.Errorf("lambdazip: %w", err)
		}
		_, err = io.Copy(dst, src)
		src.Close()
		if err != nil {
			return fmt.Errorf("lambdazip: %s: %w", f.Name, err)
		}
	}
	return zw.Close()
}

// Bootstrap zips one executable as "bootstrap" (provided.al2023) into out.
func Bootstrap(binary, out string) error {
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("lambdazip: %w", err)
	}
	if err := Write(f, []File{{Name: "bootstrap", Path: binary, Executable: true}}); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("lambdazip: %w", err)
	}
	return os.Rename(tmp, out)
}
