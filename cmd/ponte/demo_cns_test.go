package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/ponte-id/ponte/adapters/cns"
	"github.com/ponte-id/ponte/internal/method"
)

// TestCNSDemo: the demo makes a CNS CA, a card for Mario Rossi and the card
// listener's certificate, configures the CNS with them (the method opens,
// its CRL fresh), prints how to use the card (the .p12, the curl line), and
// on a second run keeps the card a browser may have imported.
func TestCNSDemo(t *testing.T) {
	t.Chdir(t.TempDir())
	vars := []string{"PONTE_CARD_ADDR", "PONTE_CARD_CERT_FILE", "PONTE_CARD_KEY_FILE", "PONTE_CNS_ENABLED", "PONTE_CNS_CARD_URL",
		"PONTE_CNS_CA_FILE", "PONTE_CNS_CRL_DIR", "PONTE_CNS_OCSP", "PONTE_CNS_CRL_FETCH", "PONTE_DEV"}
	for _, k := range vars {
		t.Setenv(k, "") // restored after the test, whatever cnsDemo sets
	}
	var stderr, out bytes.Buffer
	cnsDemo(&stderr, demoCitizens[0])(&out, "http://127.0.0.1:8080")
	if stderr.Len() > 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}
	for _, want := range []string{"card.p12", `password "ponte"`, "--cert ponte-demo-cns/card.pem --key ponte-demo-cns/card.key",
		"'http://127.0.0.1:8080/demo/login?level=dispositivo'", "RSSMRA80A01H501U"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's note lacks %q:\n%s", want, out.String())
		}
	}
	os.Setenv("PONTE_DEV", "true")
	cfg, err := loadConfig(flag.NewFlagSet("demo", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CardListener.Addr != demoCardAddr {
		t.Fatalf("card listener %q", cfg.CardListener.Addr)
	}
	m, err := cns.Plug.Open(cfg.Section("cns"), method.Deps{Issuer: cfg.Issuer})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := cns.StatusOf(m)
	if !st.Enabled || len(st.CAs) != 1 || len(st.CRLFiles) != 1 || st.CRLFiles[0].Stale || st.Degraded {
		t.Fatalf("the demo's CNS: %+v", st)
	}
	card, _ := os.ReadFile(demoCNSDir + "/card.pem")
	for _, k := range vars {
		os.Setenv(k, "") // a new run of the demo
	}
	cnsDemo(&stderr, demoCitizens[0])
	again, _ := os.ReadFile(demoCNSDir + "/card.pem")
	if len(card) == 0 || !bytes.Equal(card, again) || stderr.Len() > 0 {
		t.Fatalf("the second run made another card (%v) or complained: %s", !bytes.Equal(card, again), stderr.String())
	}
}
