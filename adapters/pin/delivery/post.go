package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// PostConfig configures a PostSender.
type PostConfig struct {
	// Dir holds the batch files; it is created (0700) if missing.
	Dir string
	// Now gives the time of a letter; its location decides which day's file the
	// letter goes to (default time.Now, in the local time zone).
	Now func() time.Time
}

// PostSender writes the postal letters to the print batch: each letter is one
// JSON line appended to <Dir>/post-YYYY-MM-DD.jsonl (mode 0600), synced to
// disk before Send returns. The print shop collects the day's file.
type PostSender struct {
	dir string
	now func() time.Time
	mu  sync.Mutex
}

// Letter is one line of a print batch file.
type Letter struct {
	ID string `json:"id"`
	// To is the postal address.
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	Created time.Time `json:"created"`
}

// NewPost validates cfg, creates Dir if needed and returns a sender.
func NewPost(cfg PostConfig) (*PostSender, error) {
	if cfg.Dir == "" {
		return nil, errors.New("delivery: post: Dir: required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("delivery: post: Dir: %w", err)
	}
	fi, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("delivery: post: Dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("delivery: post: Dir: %s is not a directory", cfg.Dir)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &PostSender{dir: cfg.Dir, now: cfg.Now}, nil
}

// Send appends m to today's batch file and syncs it. An empty address is a
// permanent failure.
func (p *PostSender) Send(ctx context.Context, m Outgoing) error {
	if m.To == "" {
		return permanent(errors.New("post: no postal address"))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := p.now()
	line, err := json.Marshal(Letter{ID: m.ID, To: m.To, Subject: m.Subject, Body: m.Body, Created: now})
	if err != nil {
		return permanent(err)
	}
	line = append(line, '\n')

	p.mu.Lock()
	defer p.mu.Unlock()
	name := filepath.Join(p.dir, "post-"+now.Format(time.DateOnly)+".jsonl")
	_, statErr := os.Lstat(name)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("post: open batch: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		_ = f.Close()
		return fmt.Errorf("post: write batch: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("post: sync batch: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("post: close batch: %w", err)
	}
	if created {
		// Make the new file's directory entry durable too.
		if d, err := os.Open(p.dir); err == nil {
			_ = d.Sync()
			_ = d.Close()
		}
	}
	return nil
}
