package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// runLine is the part of a `run` JSON line the tables show.
type runLine struct {
	Label     string              `json:"label"`
	Methods   map[string]runTally `json:"methods"`
	InTurn    []string            `json:"methods_in_turn"`
	DurationS float64             `json:"duration_s"`
}

type runTally struct {
	Completed   int            `json:"completed"`
	HeldPerS    float64        `json:"held_per_s"`
	Kinds       map[string]int `json:"kinds"`
	P50         int64          `json:"p50_ms"`
	P99         int64          `json:"p99_ms"`
	Mixups      int            `json:"mixups"`
	Recovered   int            `json:"recovered_by_retry"`
	RetryFailed int            `json:"retried_and_failed"`
	Reposts     int            `json:"acs_reposts"`
	CrossNode   int            `json:"spid_cross_node"`
}

// tableHeader is the header of the Markdown table tableCmd writes.
const tableHeader = `| scenario | method | offered/s | completed (token + userinfo checked) | held/s | 503 + Retry-After | other 5xx | wire errors / timeouts | error redirects | other 4xx | failed redemptions | recovered by retry | SPID reposts | SPID cross-node | not sent (client's bound) | p50 | p99 | mix-ups |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|`

// tableCmd turns `run` JSON lines (a file, or stdin) into a Markdown table:
// one row per scenario and login method.
func tableCmd(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return err
	}
	in := stdin
	if fs.NArg() > 0 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	fmt.Fprintln(stdout, tableHeader)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l runLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		for _, row := range tableRows(l) {
			fmt.Fprintln(stdout, row)
		}
	}
	return sc.Err()
}

// tableRows are the rows of one run: its methods in the order they took turns.
func tableRows(l runLine) []string {
	var rows []string
	for _, m := range l.InTurn {
		t, ok := l.Methods[m]
		if !ok {
			continue
		}
		k := t.Kinds
		mix := fmt.Sprintf("**%d**", t.Mixups)
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %d | %.1f | %d | %d | %d | %d | %d | %d | %d | %s | %s | %d | %s | %s | %s |",
			l.Label, m, offered(t.Kinds, l.DurationS), t.Completed, t.HeldPerS,
			k[k503], k[k5xx]+k[k503NoRA], k[kTransport], k[kErrRedirect], k[k4xx]+k[k429], k[kHalfDone], t.Recovered,
			spidOnly(m, t.Reposts), spidOnly(m, t.CrossNode), k[kSkipped], ms(t.P50), ms(t.P99), mix))
	}
	return rows
}

// offered is a method's arrivals a second: every arrival ends in one kind.
func offered(kinds map[string]int, seconds float64) string {
	n := 0
	for _, v := range kinds {
		n += v
	}
	if seconds <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", float64(n)/seconds)
}

func spidOnly(method string, n int) string {
	if method != methodSPID {
		return "—"
	}
	return fmt.Sprint(n)
}

// ms writes milliseconds as a person reads them: 840 ms, 12.3 s.
func ms(v int64) string {
	d := time.Duration(v) * time.Millisecond
	if d < time.Second {
		return fmt.Sprintf("%d ms", v)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
