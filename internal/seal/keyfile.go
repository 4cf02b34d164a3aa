package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// ParseMasterKey decodes a master key written as base64, standard (with or
// without padding) or URL-safe without padding, and checks it is KeySize
// bytes. Surrounding whitespace is ignored. Errors never echo the input.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("master key is empty: expected 32 random bytes in base64 (e.g. from `openssl rand -base64 32`)")
	}
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("master key is not valid base64: expected 32 random bytes in base64 (e.g. from `openssl rand -base64 32`)")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key decodes to %d bytes, want %d: generate one with `openssl rand -base64 32`", len(key), KeySize)
	}
	return key, nil
}

// LoadOrCreateMasterKeyFile reads the master key kept in the file at path,
// or, if there is no such file, generates a random one and writes it there
// (base64, standard encoding, then a newline) with mode 0600, reporting
// created = true. The file is written to a temporary name in the same
// directory and then moved into place, so a reader never sees half a key and
// a key written concurrently by another process is never overwritten.
//
// An existing file that group or others may access is refused: its key must
// be treated as leaked, or at least the mode fixed with chmod 600.
// The file is meant for development; production passes the key in
// configuration instead.
func LoadOrCreateMasterKeyFile(path string) (key []byte, created bool, err error) {
	key, err = readKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("master key file %s: generate: %w", path, err)
	}
	won, err := writeKeyFile(path, key)
	if err != nil {
		return nil, false, err
	}
	if !won {
		// Another process created the file first: use its key.
		key, err = readKeyFile(path)
		return key, false, err
	}
	return key, true, nil
}

// ReadMasterKeyFile reads the master key kept in the file at path (base64,
// as ParseMasterKey takes it), refusing a file group or others may access. A
// missing file is reported with an error wrapping fs.ErrNotExist.
func ReadMasterKeyFile(path string) ([]byte, error) { return readKeyFile(path) }

// readKeyFile checks the permissions of the key file at path and parses it.
// A missing file is reported with an error wrapping fs.ErrNotExist.
func readKeyFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s has mode %04o and is accessible to group or others; restrict it with `chmod 600 %s` (and consider the key leaked)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("master key file: %w", err)
	}
	key, err := ParseMasterKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, nil
}

// writeKeyFile stores key at path through a temporary file. It reports
// won = false, and leaves the existing file alone, if path appeared meanwhile.
func writeKeyFile(path string, key []byte) (won bool, err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("master key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		// After a successful link or rename this removes only the extra name
		// or nothing at all.
		_ = os.Remove(tmpName)
	}()
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("master key file %s: write: %w", path, err)
	}
	// A hard link moves the file into place without replacing one another
	// process may have created; fall back to rename where links are unsupported.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		if err := os.Rename(tmpName, path); err != nil {
			return false, fmt.Errorf("master key file %s: %w", path, err)
		}
	}
	syncDir(dir)
	return true, nil
}

// syncDir flushes the directory entry of a newly created file, best effort.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
