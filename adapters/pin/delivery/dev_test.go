package delivery

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDevSenderPage(t *testing.T) {
	d := NewDev(3)
	ctx := context.Background()
	for i := range 4 {
		m := Outgoing{ID: fmt.Sprint(i), Channel: "email", To: fmt.Sprintf("user%d@example.it", i), Subject: fmt.Sprint("Oggetto ", i), Body: fmt.Sprint("PIN ", i)}
		if i == 3 {
			m.Channel, m.Subject, m.Body = "sms", "<b>bold</b>", `<script>alert("x")</script> PIN: ABCD1234`
		}
		if err := d.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	msgs := d.Messages()
	if len(msgs) != 3 || msgs[0].ID != "3" || msgs[2].ID != "1" {
		t.Fatalf("Messages = %+v; want the last 3, newest first", msgs)
	}

	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for h, want := range map[string]string{
		"Cache-Control":   "no-store",
		"Referrer-Policy": "no-referrer",
		"Content-Type":    "text/html; charset=utf-8",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	for _, want := range []string{
		"DEVELOPMENT MAILBOX", "user3@example.it", "sms", "&lt;b&gt;bold&lt;/b&gt;",
		"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; PIN: ABCD1234", "Oggetto 1",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>", "<b>bold", "Oggetto 0"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	if strings.Index(page, "user3@") > strings.Index(page, "user2@") {
		t.Error("not newest first")
	}

	post, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status %d", post.StatusCode)
	}
}

func TestDevSenderEmpty(t *testing.T) {
	rec := httptest.NewRecorder()
	NewDev(0).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "No messages yet") || !strings.Contains(rec.Body.String(), "DEVELOPMENT MAILBOX") {
		t.Errorf("empty page: %d\n%s", rec.Code, rec.Body.String())
	}
}
