package delivery

import (
	"bytes"
	"context"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/ponte-id/ponte/internal/ui"
)

// DevSender is a development mailbox: it delivers nothing, keeps the last
// messages in memory and shows them, secrets included, on a local page. It is
// for development and the demo walk-through only; never mount its Handler in
// production. Use one DevSender for every channel to see them all on one page.
type DevSender struct {
	mu   sync.Mutex
	ring []Delivered
	next int
	full bool
	now  func() time.Time
}

// Delivered is a message the DevSender received, and when.
type Delivered struct {
	Outgoing
	At time.Time
}

// DefaultDevMessages is how many messages NewDev keeps when given n <= 0.
const DefaultDevMessages = 100

// NewDev returns a DevSender that keeps the last n messages.
func NewDev(n int) *DevSender {
	if n <= 0 {
		n = DefaultDevMessages
	}
	return &DevSender{ring: make([]Delivered, n), now: time.Now}
}

// Send stores m, dropping the oldest message when the mailbox is full.
func (d *DevSender) Send(ctx context.Context, m Outgoing) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ring[d.next] = Delivered{Outgoing: m, At: d.now()}
	d.next = (d.next + 1) % len(d.ring)
	if d.next == 0 {
		d.full = true
	}
	return nil
}

// Messages returns the stored messages, newest first.
func (d *DevSender) Messages() []Delivered {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.next
	if d.full {
		n = len(d.ring)
	}
	out := make([]Delivered, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, d.ring[(d.next-i+len(d.ring))%len(d.ring)])
	}
	return out
}

// Handler serves the mailbox as an HTML page (GET and HEAD), newest first.
func (d *DevSender) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var buf bytes.Buffer
		if err := devPage.Execute(&buf, d.Messages()); err != nil {
			http.Error(w, "dev mailbox: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Robots-Tag", "noindex")
		ui.Write(w, http.StatusOK, buf.Bytes())
	})
}

var devPage = template.Must(template.New("dev").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<meta http-equiv="refresh" content="5">
<title>DEVELOPMENT MAILBOX — Ponte</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #fff8e1; color: #222; }
.banner { background: #b00020; color: #fff; padding: 1em; font-weight: bold; text-align: center; }
main { padding: 1em 2em; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border: 1px solid #ccc; padding: .4em .6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.body { white-space: pre-wrap; font-family: ui-monospace, monospace; }
</style>
</head>
<body>
<div class="banner" role="alert">DEVELOPMENT MAILBOX — nothing here was sent to anyone. These messages hold real secrets of this test instance; never use this sender in production.</div>
<main>
<h1>Development mailbox</h1>
<p>The last messages Ponte would have sent by email, PEC, SMS or post, newest first. The page refreshes every 5 seconds.</p>
{{if .}}
<table>
<thead><tr><th>Time</th><th>Channel</th><th>To</th><th>Subject</th><th>Body</th></tr></thead>
<tbody>
{{range .}}<tr>
<td>{{.At.Format "2006-01-02 15:04:05"}}</td>
<td>{{.Channel}}</td>
<td>{{.To}}</td>
<td>{{.Subject}}</td>
<td class="body">{{.Body}}</td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p><em>No messages yet.</em></p>
{{end}}
</main>
</body>
</html>
`))
