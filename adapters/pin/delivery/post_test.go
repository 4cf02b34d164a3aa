package delivery

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPostAppendsToDailyBatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "batch") // created by NewPost
	clk := newClock()
	p, err := NewPost(PostConfig{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	letters := []Outgoing{
		{ID: "a", Channel: "post", To: "Mario Rossi, Via Roma 1, 00100 Roma (RM)", Subject: "PIN INPS: seconda parte", Body: "Seconda parte: ABCD1234\nUnisca le due parti."},
		{ID: "b", Channel: "post", To: "Anna Bianchi, Corso Italia 2, 20100 Milano (MI)", Subject: "PIN", Body: "Seconda parte: EFGH5678 \"virgolette\""},
	}
	for _, l := range letters {
		if err := p.Send(ctx, l); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	clk.Advance(24 * time.Hour)
	next := Outgoing{ID: "c", To: "Via Verdi 3", Subject: "s", Body: "b"}
	if err := p.Send(ctx, next); err != nil {
		t.Fatal(err)
	}

	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	read := func(day string) []Letter {
		t.Helper()
		name := filepath.Join(dir, "post-"+day+".jsonl")
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out []Letter
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var l Letter
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			out = append(out, l)
		}
		return out
	}
	day1 := read("2026-03-02")
	if len(day1) != 2 {
		t.Fatalf("day 1 holds %d letters, want 2", len(day1))
	}
	for i, l := range day1 {
		w := letters[i]
		if l.ID != w.ID || l.To != w.To || l.Subject != w.Subject || l.Body != w.Body || !l.Created.Equal(newClock().Now()) {
			t.Errorf("letter %d = %+v, want %+v", i, l, w)
		}
	}
	if day2 := read("2026-03-03"); len(day2) != 1 || day2[0].ID != "c" {
		t.Errorf("day 2 = %+v", day2)
	}
}

func TestPostConcurrentLinesIntact(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPost(PostConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := p.Send(context.Background(), Outgoing{ID: string(rune('a' + i)), To: "Via Roma 1", Body: strings.Repeat("x", 5000)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	files, _ := filepath.Glob(filepath.Join(dir, "post-*.jsonl"))
	lines := 0
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var l Letter
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("interleaved line: %v", err)
			}
			lines++
		}
	}
	if lines != 20 {
		t.Errorf("%d letters written, want 20", lines)
	}
}

func TestPostValidates(t *testing.T) {
	if _, err := NewPost(PostConfig{}); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("NewPost without Dir: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPost(PostConfig{Dir: file}); err == nil {
		t.Error("NewPost on a file succeeded")
	}
	p, err := NewPost(PostConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Send(context.Background(), Outgoing{ID: "x", Body: "b"}); !errors.Is(err, ErrPermanent) {
		t.Errorf("Send without an address = %v, want permanent", err)
	}
}
