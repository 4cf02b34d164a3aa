package seal

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestParseMasterKey(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i*7 + 250) // includes bytes that encode to + / - _
	}
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{"std", base64.StdEncoding.EncodeToString(key), ""},
		{"std with newline", base64.StdEncoding.EncodeToString(key) + "\n", ""},
		{"std without padding", base64.RawStdEncoding.EncodeToString(key), ""},
		{"raw url", base64.RawURLEncoding.EncodeToString(key), ""},
		{"empty", "", "empty"},
		{"blank", "  \n", "empty"},
		{"not base64", "not a key!", "not valid base64"},
		{"too short", base64.StdEncoding.EncodeToString(key[:16]), "16 bytes, want 32"},
		{"too long", base64.StdEncoding.EncodeToString(append(key, 0)), "33 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMasterKey(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !bytes.Equal(got, key) {
				t.Fatalf("key = %x, want %x", got, key)
			}
		})
	}
}

func TestParseMasterKeyDoesNotEchoInput(t *testing.T) {
	in := base64.StdEncoding.EncodeToString(make([]byte, 16))
	_, err := ParseMasterKey(in)
	if err == nil || strings.Contains(err.Error(), in) {
		t.Fatalf("err = %v, must not contain the input", err)
	}
}

func TestLoadOrCreateMasterKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ponte.master.key")
	key, created, err := LoadOrCreateMasterKeyFile(path)
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("first call: len %d, created %v, err %v", len(key), created, err)
	}
	if bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatal("generated an all-zero key")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(key) + "\n"; string(data) != want {
		t.Fatalf("file content %q, want %q", data, want)
	}
	if runtime.GOOS != "windows" {
		info, _ := os.Stat(path)
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Fatalf("file mode %04o, want 0600", perm)
		}
	}
	again, created, err := LoadOrCreateMasterKeyFile(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("reload: created %v, err %v, same key %v", created, err, bytes.Equal(again, key))
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestLoadOrCreateMasterKeyFileRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	key, created, err := LoadOrCreateMasterKeyFile("k")
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("len %d, created %v, err %v", len(key), created, err)
	}
}

func TestLoadOrCreateMasterKeyFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], _, errs[i] = LoadOrCreateMasterKeyFile(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("call %d returned a different key than call 0", i)
		}
	}
}

func TestLoadOrCreateMasterKeyFileErrors(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX permissions")
	}
	valid := base64.StdEncoding.EncodeToString(testKey(3)) + "\n"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string
	}{
		{"group readable", valid, 0o640, "chmod 600"},
		{"world readable", valid, 0o604, "chmod 600"},
		{"group writable", valid, 0o620, "chmod 600"},
		{"empty", "", 0o600, "empty"},
		{"garbage", "???\n", 0o600, "not valid base64"},
		{"short key", base64.StdEncoding.EncodeToString(testKey(3)[:8]), 0o600, "want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			_, _, err := LoadOrCreateMasterKeyFile(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s and containing %q", err, path, tt.wantErr)
			}
			// The bad file is never replaced.
			if data, _ := os.ReadFile(path); string(data) != tt.content {
				t.Fatalf("file was rewritten: %q", data)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, _, err := LoadOrCreateMasterKeyFile(t.TempDir()); err == nil {
			t.Fatal("want error for a directory")
		}
	})
	t.Run("missing parent", func(t *testing.T) {
		if _, _, err := LoadOrCreateMasterKeyFile(filepath.Join(t.TempDir(), "no", "k")); err == nil {
			t.Fatal("want error for a missing parent directory")
		}
	})
}
