#!/usr/bin/env python3
"""Turn judgments.txt into BEIR files (queries.jsonl, qrels.tsv) with podseek chapter ids.

usage: podseek parse data/podcast-page.txt --json > /tmp/corpus.json
       python3 tests/data/dev/build.py /tmp/corpus.json
"""
import json, os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = {"github": "GitHub's Agent Era", "xai": "Inside xAI", "esm": "La Amarga Lección", "cloudflare": "ciencia ficción",
        "gemma": "IA abierta de Google", "daytona": "AI Agents Need Computers", "railway": "The Agent-Native Cloud",
        "drones": "The Next War", "abridge": "Por dentro de Abridge", "pocock": "Matt Pocock", "physics": "GPT-5 derived"}
episodes = json.load(open(sys.argv[1]))["episodes"]
ids = {}
for key, needle in KEYS.items():
    ep = next(e for e in episodes if needle in e["title"])
    for c in ep["chapters"]:
        ids[f"{key}@{c['timestamp']}"] = c["id"]
queries, qrels = [], ["query-id\tcorpus-id\tscore"]
for line in open(os.path.join(HERE, "judgments.txt"), encoding="utf-8"):
    if not line.strip() or line.startswith("#"):
        continue
    qid, lang, kind, text, judged = [p.strip() for p in line.split("|")]
    queries.append(json.dumps({"_id": qid, "text": text, "lang": lang, "kind": kind}, ensure_ascii=False))
    for j in judged.split():
        ref, grade = j.rsplit("=", 1)
        qrels.append(f"{qid}\t{ids[ref]}\t{grade}")
open(os.path.join(HERE, "queries.jsonl"), "w", encoding="utf-8").write("\n".join(queries) + "\n")
open(os.path.join(HERE, "qrels.tsv"), "w", encoding="utf-8").write("\n".join(qrels) + "\n")
print(len(queries), "queries,", len(qrels) - 1, "judgments")
