#!/usr/bin/env bash
# Runs Forgeway's whole test suite: formatting, vet, staticcheck, every package's tests with
# the race detector (against SQLite and, when FORGEWAY_TEST_POSTGRES is set, PostgreSQL), and
# short runs of the fuzz targets. Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

if [ -n "${FORGEWAY_TEST_POSTGRES:-}" ]; then
  echo "== PostgreSQL tests enabled: ${FORGEWAY_TEST_POSTGRES%%\?*}"
else
  echo "== PostgreSQL tests disabled (set FORGEWAY_TEST_POSTGRES=postgres://… to run them)"
fi

echo "== go test"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz (short)"
fuzztime=${FUZZTIME:-10s}
# Every webhook package's FuzzVerify and FuzzNormalize.
for pkg in $(grep -rl --include='*_test.go' '^func FuzzVerify' internal | xargs -n1 dirname | sort -u); do
  for target in FuzzVerify FuzzNormalize; do
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$pkg"
  done
done
go test -run '^$' -fuzz '^FuzzMembers$' -fuzztime "$fuzztime" ./internal/jsontop
go test -run '^$' -fuzz '^FuzzValid$' -fuzztime "$fuzztime" ./internal/jsontop
go test -run '^$' -fuzz '^FuzzHeadersJSON$' -fuzztime "$fuzztime" ./internal/store/sqlstore
