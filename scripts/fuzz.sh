#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 30s). The checked-in seed
# corpora (testdata/fuzz/FuzzX/) run in plain `go test` too; a failure found
# here is written next to them: check it in once the bug is fixed.
#   FUZZTIME=5m scripts/fuzz.sh            # all targets
#   scripts/fuzz.sh FuzzDecodeJob          # only the named ones
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

targets=(
	"FuzzParseExecute ./api"
	"FuzzDBRequest ./api"
	"FuzzDecodeJob ./messages"
	"FuzzUserToken ./messages"
	"FuzzToolName ./connectors"
	"FuzzPostgresReadOnly ./connectors/postgres"
	"FuzzMySQLReadOnly ./connectors/mysql"
	"FuzzMongoReadOnly ./connectors/mongodb"
	"FuzzRedisAllowlist ./connectors/redis"
	"FuzzMayNameMaxRows ./worker"
)

failed=()
for t in "${targets[@]}"; do
	read -r name pkg <<<"$t"
	if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
		continue
	fi
	echo "== $name ($pkg, $FUZZTIME)"
	if ! "$GO" test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"; then
		failed+=("$name")
	fi
done

# A target that is not listed above is a mistake: every Fuzz function runs here.
listed=$(printf '%s\n' "${targets[@]}" | cut -d' ' -f1 | sort)
found=$("$GO" test -list '^Fuzz' ./... 2>/dev/null | grep '^Fuzz' | sort || true)
if [ "$listed" != "$found" ]; then
	echo "scripts/fuzz.sh: the target list differs from the Fuzz functions in the tree:" >&2
	diff <(echo "$listed") <(echo "$found") >&2 || true
	failed+=("target-list")
fi

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: all targets passed"
