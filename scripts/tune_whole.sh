#!/usr/bin/env bash
# Issue #28: the whole-chapter signals tried on the TUNING half as it stood when they were chosen
# (the 114 tuning questions among u001-u220; the questions added in #28 came after the choice), one
# table row each, kept or not. The test half is scored once, by scripts/baselines.sh.
# The third round's choice (translation's words as the default, on the 230-question tuning half) is in
# scripts/baselines.sh's last block.
# usage: bash scripts/tune_whole.sh [WORK_DIR]   (indexes are kept in WORK_DIR and reused; about
#        15 minutes on 2 cores; Apertium for the translation rows)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/podseek/target}
cargo build --release -q --bin podseek
P="$CARGO_TARGET_DIR/release/podseek"
tuning_up_to() { # LAST_ID OUT: the tuning questions u001..LAST_ID, as the half stood when they were used
  python3 - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open("tests/data/unseen/queries.jsonl", encoding="utf-8"):
        q = json.loads(line)
        if q["split"] == "tune" and int(q["_id"][1:]) <= int(sys.argv[1]):
            out.write(line)
PY
}
tuning_up_to 220 "$WORK/tune-queries.jsonl"
Q=(--queries "$WORK/tune-queries.jsonl" --qrels tests/data/unseen/qrels.tsv)
build() { # name ingest-args...
  local name=$1; shift
  [ -f "$WORK/$name/CURRENT" ] || "$P" ingest data/podcast-page.txt --index "$WORK/$name" "$@" >/dev/null 2>&1
}
build chunks --whole-chapters off
for title in untitled chapter episode; do
  build "$title" --whole-chapters "$title" --summary-chunks
  build "$title-alone" --whole-chapters "$title"
done
# Untranslated unless the row says `--translate` (the rows predate translation as the default).
off() { [[ " $* " == *" --translate "* ]] || echo --translate off; }
row() { "$P" eval "${Q[@]}" --index "$WORK/$1" --row "$2" $(off "$@") "${@:3}" 2>/dev/null; }
"$P" eval "${Q[@]}" --index "$WORK/chunks" --row "128-token chunks + quotes, hybrid (old default)" --translate off --header 2>/dev/null
for title in untitled chapter episode; do
  row "$title" "whole ($title) beside summary chunks, max" --whole max
  for w in 0.3 0.4 0.5 0.6 0.7 1.0; do
    row "$title" "whole ($title) beside summary chunks, weight $w" --whole-weight "$w"
  done
  row "$title" "whole ($title) beside summary chunks, weight 0.5, vectors only" --whole-weight 0.5 --dense-only
  row "$title" "whole ($title) beside summary chunks, weight 0.5, translated question (max)" --whole-weight 0.5 --translate max
done
for title in untitled episode; do
  weights="0 0.2 0.4 0.6"; [ "$title" = untitled ] && weights="0 0.2 0.3 0.4 0.5 0.6"
  for w in $weights; do
    row "$title-alone" "whole ($title) instead of summary chunks, weight $w" --whole-weight "$w"
  done
  for w in 0.3 0.4 0.5; do
    row "$title-alone" "whole ($title) instead of summary chunks, weight $w, translated question (max)" --whole-weight "$w" --translate max
  done
done
row untitled-alone "whole (untitled) instead of summary chunks, weight 0.5, translated question (max)" --translate max
for n in 1 3 5 10; do
  row untitled-alone "the same, translated only when the other language leads the best $n chapters" --translate max --translate-lead "$n"
done
echo
echo "Second round: the whole tuning half as it stood (169 questions, u001-u332) on the default index; the flag-made rows"
tuning_up_to 332 "$WORK/tune169.jsonl"
T=(--queries "$WORK/tune169.jsonl" --qrels tests/data/unseen/qrels.tsv)
row2() { "$P" eval "${T[@]}" --index "$WORK/untitled-alone" --row "$1" $(off "$@") "${@:2}" 2>/dev/null; }
"$P" eval "${T[@]}" --index "$WORK/untitled-alone" --row "default: whole (untitled) instead of summary chunks, weight 0.5" --translate off --header 2>/dev/null
row2 "translated question (max)" --translate max
for n in 1 3 10; do
  row2 "translated question (max), only when the other language leads the best $n chapters" --translate max --translate-lead "$n"
done
row2 "translated question for the keyword part only (--translate keywords)" --translate keywords
row2 "per-language keyword part (English and Spanish stemmers)" --keyword per-language
for es in 0.01 0.02 -0.01; do
  row2 "Spanish chapters $es for Spanish questions" --same-language="0,$es"
done
