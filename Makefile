# Targets people expect; the README's quick start uses `make run` and `make test`.
.PHONY: crash loadtest run demo test test-race test-postgres test-browser lint fmt bench fuzz mutation

run demo:
	go run ./cmd/ponte demo

test:
	go test ./...

test-race:
	go test -race ./...

test-postgres:
	PONTE_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test -race -count=1 ./...

# The browser tests in headless Chromium (apt-get install chromium), with
# axe-core on every page: the PIN's walks (screenshots in
# adapters/pin/testdata/screenshots/) and a citizen ending a session on the
# account pages (internal/account/testdata/screenshots/).
test-browser:
	go test -count=1 -run TestBrowserWalks -v ./adapters/pin/
	go test -count=1 -run TestBrowserEndSession -v ./internal/account/
	go test -count=1 -run 'TestBrowserAdminRegistersAClient|TestBrowserOperatorApprovesAConversion' -v ./internal/console/

# kill -9 of ponte serve during logins, redemptions and recovery forms, 20
# times; everything a client got must be there after each restart.
crash:
	PONTE_CRASH_CYCLES=20 go test -count=1 -v -run 'TestCrashLosesNothing|TestSIGTERMFinishesLogins' ./cmd/ponte

# Load and failure tests on loopback (private PostgreSQL and Redis; PIN, SPID
# and CNS logins, METHODS=pin,spid,cns; minutes): results in loadtest/results.jsonl, summarised in BENCHMARKS.md.
loadtest:
	bash loadtest/run.sh

lint:
	gofmt -l $$(git ls-files '*.go')
	go vet ./...
	staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	go test -run '^$$' -bench . -benchmem ./...

# Every fuzz target of outside input (package:target), FUZZTIME each (30 s;
# .ci/run runs them all briefly). A parser of outside input gets its target here.
FUZZTIME ?= 30s
FUZZ_TARGETS = \
	./internal/codicefiscale:FuzzParse \
	./adapters/pin:FuzzDecode \
	./adapters/pin:FuzzForms \
	./adapters/cns:FuzzParseSubject \
	./adapters/spid:FuzzResponseChecks \
	./adapters/spid:FuzzResponse \
	./idp/admin:FuzzParseAuditQuery \
	./idp/staff:FuzzAuthenticate \
	./idp/provider:FuzzACRClaim \
	./idp/provider:FuzzClientAssertion \
	./internal/clientcert:FuzzParseXFCC \
	./internal/clientcert:FuzzParseNginx \
	./internal/clientcert:FuzzParseRFC9440 \
	./internal/config:FuzzLoad \
	./internal/logmask:FuzzString \
	./internal/seal:FuzzOpen
# A target that fails with a bare "context deadline exceeded" and no failing
# input written is Go 1.26's fuzzing engine racing its own -fuzztime deadline
# (golang/go#75804, fixed in Go 1.27), not a finding: it runs once more, and
# fails the run only if it fails again. Any other failure fails at once.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; tags=""; \
		case $$pkg in ./adapters/spid) tags="-tags fuzzing";; esac; \
		echo "== $$name ($$pkg)"; \
		out=$$(go test $$tags -run '^$$' -fuzz "^$$name\$$" -fuzzminimizetime 1s -fuzztime $(FUZZTIME) $$pkg 2>&1) && { echo "$$out"; continue; }; \
		echo "$$out"; \
		case "$$out" in *"Failing input written"*) exit 1;; *"context deadline exceeded"*) ;; *) exit 1;; esac; \
		echo "== $$name: the fuzzing engine's deadline race (golang/go#75804), no failing input: once more"; \
		go test $$tags -run '^$$' -fuzz "^$$name\$$" -fuzzminimizetime 1s -fuzztime $(FUZZTIME) $$pkg; \
	done

# Mutation testing of the protocol core and the PIN adapter (not in CI: an hour
# or more). SQLite only; each mutant runs its own package's tests (integration
# mode off) with a timeout of 5 x the measured suite, and -count=1 so that a
# cached coverage run cannot shrink that timeout. Reports: .mutation/*.json.
GREMLINS_VERSION := v0.6.0
GREMLINS := $(CURDIR)/.mutation/bin/$(GREMLINS_VERSION)/gremlins
GREMLINS_FLAGS := --integration=false --timeout-coefficient 5

mutation:
	test -x $(GREMLINS) || GOBIN=$(dir $(GREMLINS)) go install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
	PONTE_TEST_POSTGRES_DSN= GOFLAGS=-count=1 $(GREMLINS) unleash $(GREMLINS_FLAGS) \
		--output $(CURDIR)/.mutation/idp.json idp
	PONTE_TEST_POSTGRES_DSN= GOFLAGS=-count=1 $(GREMLINS) unleash $(GREMLINS_FLAGS) \
		--exclude-files '^delivery/' --output $(CURDIR)/.mutation/pin.json adapters/pin
