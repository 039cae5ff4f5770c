#!/usr/bin/env python3
"""Turn a judgments.txt into BEIR files (queries.jsonl, qrels.tsv) with podseek chapter ids.

usage: podseek parse data/podcast-page.txt --json > /tmp/corpus.json
       python3 tests/data/build_qrels.py /tmp/corpus.json tests/data/dev
       python3 tests/data/build_qrels.py /tmp/corpus.json tests/data/unseen --split

With --split, every query gets a "split" of "tune" or "test": within each group of the same question
language, answer language and kind, queries alternate in id order, so both halves have the same mix
and nobody picks which question lands where. It also prints how many questions share a rare word
with a chapter they are judged against (a word in at most 3 chapters, 5+ letters, accents folded).
"""
import collections, json, os, re, sys, unicodedata

KEYS = {"github": "GitHub's Agent Era", "xai": "Inside xAI", "esm": "La Amarga Lección", "cloudflare": "ciencia ficción",
        "gemma": "IA abierta de Google", "daytona": "AI Agents Need Computers", "railway": "The Agent-Native Cloud",
        "drones": "The Next War", "abridge": "Por dentro de Abridge", "pocock": "Matt Pocock", "physics": "GPT-5 derived"}


def words(text):
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return {w for w in re.findall(r"[a-z0-9]+", folded) if len(w) >= 5}


def chapters_by_ref(episodes):
    out = {}
    for key, needle in KEYS.items():
        ep = next(e for e in episodes if needle in e["title"])
        for c in ep["chapters"]:
            out[f"{key}@{c['timestamp']}"] = c
    return out


def read_judgments(path):
    for line in open(path, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            qid, lang, kind, text, judged = [p.strip() for p in line.split("|")]
            grades = [j.rsplit("=", 1) for j in judged.split()]
            yield qid, lang, kind, text, [(ref, int(g)) for ref, g in grades]


def main():
    corpus, folder = sys.argv[1], sys.argv[2]
    split = "--split" in sys.argv
    chapters = chapters_by_ref(json.load(open(corpus))["episodes"])
    texts = {ref: c["title"] + " " + c["summary"] + " " + " ".join(q["text"] for q in c["quotes"]) for ref, c in chapters.items()}
    df = collections.Counter(w for t in texts.values() for w in words(t))
    rows = list(read_judgments(os.path.join(folder, "judgments.txt")))
    groups = collections.defaultdict(list)
    for qid, lang, kind, _, judged in rows:
        answer_lang = chapters[max(judged, key=lambda j: j[1])[0]]["lang"]
        groups[(lang, answer_lang, kind)].append(qid)
    half = {qid: ("tune", "test")[i % 2] for ids in groups.values() for i, qid in enumerate(sorted(ids))}
    queries, qrels, sharing = [], ["query-id\tcorpus-id\tscore"], 0
    for qid, lang, kind, text, judged in rows:
        q = {"_id": qid, "text": text, "lang": lang, "kind": kind}
        if split:
            q["split"] = half[qid]
        queries.append(json.dumps(q, ensure_ascii=False))
        rare = {w for ref, _ in judged for w in words(texts[ref]) if df[w] <= 3}
        sharing += bool(words(text) & rare)
        qrels += [f"{qid}\t{chapters[ref]['id']}\t{g}" for ref, g in judged]
    open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8").write("\n".join(queries) + "\n")
    open(os.path.join(folder, "qrels.tsv"), "w", encoding="utf-8").write("\n".join(qrels) + "\n")
    print(f"{len(queries)} queries, {len(qrels) - 1} judgments; {sharing} share a rare word with a judged chapter, "
          f"{len(queries) - sharing} share none")
    for (lang, answer_lang, kind), ids in sorted(groups.items()):
        print(f"  {lang}->{answer_lang} {kind}: {len(ids)}")


if __name__ == "__main__":
    main()
