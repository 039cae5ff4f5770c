#!/usr/bin/env bash
# Ingest speed of two builds side by side: the bundled corpus (190 chapters) into an empty index,
# old then new in each of ROUNDS rounds (these machines are noisy, so the builds take turns), with
# the time each build reports for its ingest, chapters per second, and new/old per round.
# usage: [ROUNDS=3] bash scripts/bench_ingest.sh OLD_BINARY NEW_BINARY [CORPUS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CORPUS=${3:-data/podcast-page.txt}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
seconds() { # binary -> the ingest's own reported seconds
  rm -rf "$WORK/index"
  "$1" ingest "$CORPUS" --index "$WORK/index" 2>/dev/null | sed -nE 's/.* in ([0-9.]+)s$/\1/p'
}
chapters=$("$2" parse "$CORPUS" 2>/dev/null | sed -nE 's/.* ([0-9]+) chapters.*/\1/p' | head -1)
echo "corpus: $CORPUS ($chapters chapters)"
for round in $(seq "$ROUNDS"); do
  old=$(seconds "$1")
  new=$(seconds "$2")
  awk -v r="$round" -v o="$old" -v n="$new" -v c="$chapters" 'BEGIN {
    printf "round %d: old %.1f s (%.1f chapters/s), new %.1f s (%.1f chapters/s), new/old %.2f\n",
      r, o, c / o, n, c / n, n / o }'
done
