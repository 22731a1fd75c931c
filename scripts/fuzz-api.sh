#!/usr/bin/env bash
# Fuzzes a private `fieldops serve` against schemas/openapi.yaml with schemathesis: every route
# gets generated valid and invalid requests, then stateful sequences (create, read, delete…).
# A 5xx, a crash or a response outside the contract is a bug. Not part of CI (minutes, random).
#
#   bash scripts/fuzz-api.sh                 # admin token, 40 examples per route, seed 1
#   ROLE=worker EXAMPLES=100 SEED=7 bash scripts/fuzz-api.sh
#
# Needs a built `fieldops` (swift build) and Python; installs schemathesis with pip if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROLE=${ROLE:-admin}
EXAMPLES=${EXAMPLES:-40}
SEED=${SEED:-1}
PORT=${PORT:-8391}
BIN=${BIN:-.build/debug/fieldops}
[ -x "$BIN" ] || { echo "no $BIN: run swift build first" >&2; exit 1; }
command -v st >/dev/null || python3 -m pip install --quiet schemathesis

STORAGE=$(mktemp -d /tmp/fieldops-fuzz.XXXXXX)
"$BIN" serve --storage "$STORAGE" --port "$PORT" --rate-limit 0 >"$STORAGE/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; echo "server log and data: $STORAGE"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
TOKEN=$("$BIN" token create --tenant fuzz --sub "$ROLE-1" --role "$ROLE" --storage "$STORAGE")

# Left out: positive_data_acceptance (the contract cannot say "a cursor this server issued" or
# "a member of this room", so valid-looking requests are refused by design) and use_after_free
# (DELETE /v1/workers/{id} deactivates: the worker stays readable). Known and accepted by
# design, reported as ST201: `null` for an optional body field reads as absent, and a PATCH of
# an upload with no body appends nothing and answers the offset.
status=0
# From the data directory: schemathesis keeps its cache of failing cases in ./.schemathesis.
SCHEMA="$PWD/schemas/openapi.yaml"
cd "$STORAGE"
st run "$SCHEMA" --url "http://127.0.0.1:$PORT" -H "Authorization: Bearer $TOKEN" \
    --checks all --exclude-checks positive_data_acceptance,use_after_free \
    --max-examples "$EXAMPLES" --seed "$SEED" --workers 2 || status=$?
kill -0 $SERVER 2>/dev/null || { echo "the server died: see $STORAGE/serve.log" >&2; exit 1; }
exit $status
