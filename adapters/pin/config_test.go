package pin_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ponte-id/ponte/adapters/pin"
	"github.com/ponte-id/ponte/idp"
	"github.com/ponte-id/ponte/idp/provider"
	"github.com/ponte-id/ponte/internal/config"
	"github.com/ponte-id/ponte/internal/method"
	"github.com/ponte-id/ponte/internal/seal"
	"github.com/ponte-id/ponte/storage"
	"github.com/ponte-id/ponte/storage/storagetest"
)

const examplePath = "../../config.example.yaml"

// openExample opens the PIN method from the example configuration and environ.
func openExample(t *testing.T, environ []string, dev bool) (idp.Authenticator, error) {
	t.Helper()
	cfg, err := config.Load(examplePath, append([]string{"PONTE_MASTER_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, environ...))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	box, _ := seal.New(key)
	store := storagetest.SQLite(t)
	return pin.Plug.Open(cfg.Section(pin.Plug.Section), method.Deps{
		Store: store, Box: box, Revoker: provider.Revoker{Store: store}, Issuer: "https://login.example.it", Dev: dev,
	})
}

// TestConfigExample: the example's "pin" section states exactly the defaults,
// and every line names its variable, which sets the setting.
func TestConfigExample(t *testing.T) {
	a, err := openExample(t, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := pin.ServiceOf(a)
	if !ok {
		t.Fatal("Open did not return the PIN method")
	}
	want := pin.DefaultConfig()
	want.BaseURL = "https://login.example.it"
	// What the service makes of the zeros that mean "the default".
	want.HashConcurrency, want.HashQueue, want.HashMaxWait = runtime.GOMAXPROCS(0), 16*runtime.GOMAXPROCS(0), 3*time.Second
	if got := s.Config(); !reflect.DeepEqual(got, want) {
		t.Fatalf("example section =\n%+v\nwant the defaults\n%+v", got, want)
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	leaves := map[string]string{}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "pin" {
			collect(root.Content[i+1], "", leaves)
		}
	}
	for _, st := range pin.Settings() {
		comment, ok := leaves[st.Path]
		if !ok || !strings.HasPrefix(comment, "# "+st.Env+":") {
			t.Errorf("the example's pin.%s does not document %s: %q", st.Path, st.Env, comment)
		}
		delete(leaves, st.Path)
	}
	for path := range leaves {
		t.Errorf("the example sets pin.%s, which has no variable", path)
	}
}

func collect(n *yaml.Node, prefix string, out map[string]string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.MappingNode {
			collect(v, prefix+k.Value+".", out)
			continue
		}
		out[prefix+k.Value] = v.LineComment
	}
}

// TestConfigErrors: every bad setting is reported at once, by its path and
// its variable.
func TestConfigErrors(t *testing.T) {
	_, err := openExample(t, []string{
		"PONTE_PIN_MAX_FAILURES=101", "PONTE_PIN_RECOVERY_TTL=2h", "PONTE_SMTP_ADDR=nohost", "PONTE_SMTP_FROM=x",
		"PONTE_PIN_LIMIT_PER_IP=0", "PONTE_PIN_ARGON2_MEMORY_KIB=1024",
	}, false)
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want field errors, got %v", err)
	}
	for _, want := range []string{
		"pin.max_failures (PONTE_PIN_MAX_FAILURES)", "pin.recovery_ttl (PONTE_PIN_RECOVERY_TTL)",
		"pin.delivery.email.addr (PONTE_SMTP_ADDR)", "pin.delivery.email.from (PONTE_SMTP_FROM)",
		"pin.limits.per_ip (PONTE_PIN_LIMIT_PER_IP)", "pin.argon2.memory_kib (PONTE_PIN_ARGON2_MEMORY_KIB)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s:\n%v", want, err)
		}
	}
	if _, err := openExample(t, []string{"PONTE_PIN_REQUEST_CUTOFF=1 October"}, false); err == nil ||
		!strings.Contains(err.Error(), "PONTE_PIN_REQUEST_CUTOFF (pin.request_cutoff)") {
		t.Fatalf("a bad date: %v", err)
	}
}

// TestOpenedMethod: what Open returns has every capability the PIN uses: in
// dev mode its messages go to the development mailbox when it runs; it sweeps
// expired codes and quiet counters.
func TestOpenedMethod(t *testing.T) {
	a, err := openExample(t, []string{"PONTE_DELIVERY_INTERVAL=10ms", "PONTE_PIN_REQUEST_CUTOFF=2999-01-01"}, true)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := pin.ServiceOf(a)
	for name, ok := range map[string]bool{
		"runner": implements[idp.Runner](a), "operator API": implements[idp.OperatorAPI](a), "sweeper": implements[idp.Sweeper](a),
		"step-up hint": implements[idp.StepUpHinter](a), "body limit": implements[idp.BodyLimit](a),
	} {
		if !ok {
			t.Errorf("the PIN method is no %s", name)
		}
	}
	if pin.DevMailbox(a) == nil {
		t.Fatal("no development mailbox in dev mode")
	}
	ctx := context.Background()
	if _, err := s.RequestPIN(ctx, mario(), pin.ChannelOnline, "", ""); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- a.(idp.Runner).Run(runCtx) }()
	store := s.Store()
	for deadline := time.Now().Add(10 * time.Second); ; {
		msgs, _ := store.ListMessages(ctx, 10)
		if len(msgs) == 2 && !msgs[0].SentAt.IsZero() && !msgs[1].SentAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner did not deliver to the mailbox: %+v", msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	_ = store.CreateCode(ctx, storage.OneTimeCode{Hash: "old", Purpose: "x", ExpiresAt: now.Add(-time.Minute)})
	_ = store.CreateCode(ctx, storage.OneTimeCode{Hash: "live", Purpose: "x", ExpiresAt: now.Add(time.Minute)})
	_, _ = store.ReserveAttempt(ctx, "ip:quiet", now.Add(-31*24*time.Hour), time.Time{})
	_, _ = store.ReserveAttempt(ctx, "ip:recent", now.Add(-time.Hour), time.Time{})
	if err := a.(idp.Sweeper).Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := store.ConsumeCode(ctx, "old", "x", now.Add(-2*time.Minute)); !errors.Is(err, storage.ErrNotFound) {
		t.Error("an expired code survived the sweep")
	}
	if _, err := store.ConsumeCode(ctx, "live", "x", now); err != nil {
		t.Errorf("a live code was swept: %v", err)
	}
	if n, _, _ := store.GetAttempts(ctx, "ip:quiet"); n != 0 {
		t.Error("a counter quiet for a month survived the sweep")
	}
	if n, _, _ := store.GetAttempts(ctx, "ip:recent"); n != 1 {
		t.Error("a recent counter was swept")
	}
}

func implements[I any](a idp.Authenticator) bool { _, ok := a.(I); return ok }
