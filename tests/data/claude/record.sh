#!/usr/bin/env bash
# Re-record what the real Claude Code CLI prints headless when it cannot work (see README.md).
# Usage: tests/data/claude/record.sh [path/to/claude]   (default: node_modules/.bin/claude)
# Each run gets an empty HOME (so no login is found) and an empty git repository as its cwd.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
claude="$(realpath "${1:-$here/../../../node_modules/.bin/claude}")"
version="$("$claude" --version | cut -d' ' -f1)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

run() {  # run NAME [VAR=value ...] -- [extra claude args ...]
    local name="$1"; shift
    local vars=()
    while [[ "$1" != "--" ]]; do vars+=("$1"); shift; done
    shift
    mkdir -p "$scratch/$name/home" "$scratch/$name/work"
    git -C "$scratch/$name/work" init -q
    local start end
    start=$(date +%s.%N)
    (cd "$scratch/$name/work" && env -i PATH=/usr/bin:/bin HOME="$scratch/$name/home" "${vars[@]}" \
        setsid "$claude" -p "Create hello.txt containing hello" --output-format stream-json \
        --verbose --permission-mode acceptEdits --strict-mcp-config "$@" \
        </dev/null >"$here/$name-$version.jsonl" 2>"$scratch/$name.stderr")
    local code=$?
    end=$(date +%s.%N)
    printf '%s: exit %s after %.1f s; stderr: %s\n' "$name" "$code" "$(echo "$end - $start" | bc)" \
        "$(head -c 200 "$scratch/$name.stderr")"
}

run not-logged-in -- --session-id 3f1c2a4e-8b7d-4e2a-9c1b-0d5e6f7a8b9c
# A dummy key and an API address where nothing listens: connection refused on every try.
run network-refused-2-retries ANTHROPIC_API_KEY=dummy-key ANTHROPIC_BASE_URL=http://127.0.0.1:9 \
    CLAUDE_CODE_MAX_RETRIES=2 -- --session-id 7c9e6679-7425-40de-944b-e07fc1f90ae7
run resume-unknown-session -- --resume 11111111-2222-4333-8444-555555555555
if [[ "${RECORD_SLOW:-}" == 1 ]]; then  # the default 10 retries take about three minutes
    run network-refused ANTHROPIC_API_KEY=dummy-key ANTHROPIC_BASE_URL=http://127.0.0.1:9 \
        -- --session-id 5b2e9d1c-6a7f-4c3b-8e2d-1f0a9b8c7d6e
fi
