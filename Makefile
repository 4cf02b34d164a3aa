# Targets people expect; the README's quick start uses `make run` and `make test`.
.PHONY: run demo test test-race test-postgres lint fmt bench fuzz

run demo:
	go run ./cmd/ponte demo

test:
	go test ./...

test-race:
	go test -race ./...

test-postgres:
	PONTE_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test -race -count=1 ./...

lint:
	gofmt -l $$(git ls-files '*.go')
	go vet ./...
	staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

bench:
	go test -run '^$$' -bench . -benchmem ./...

fuzz:
	go test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./adapters/pin/codicefiscale
