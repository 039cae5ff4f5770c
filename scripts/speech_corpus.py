#!/usr/bin/env python3
"""Read the sample corpus's chapters aloud: audio-only episodes whose chapter boundaries and words are known.

usage: python3 scripts/speech_corpus.py CORPUS_JSON OUT_DIR BASE_URL [--episodes 0,3,5] [--chapters N]

CORPUS_JSON is `podseek parse --json data/podcast-page.txt`. Every chosen episode's chapter summaries are spoken
by espeak-ng (en-us or es, 160 words a minute) in order, one second of silence between chapters, and encoded to
MP3 with lame. OUT_DIR gets:
  ep<N>.mp3       the episode
  feed.xml        an RSS feed of the episodes, enclosures only (BASE_URL + ep<N>.mp3): no chapters, no transcript
  truth.json      per episode: id, language, split (tune or test, from a hash of the title: nobody chooses),
                  duration, chapter start seconds and the words read (the WER reference)
Needs espeak-ng, sox and lame (Debian). Deterministic for the same corpus and tools.
"""
import argparse
import hashlib
import json
import os
import subprocess
import tempfile
from xml.sax.saxutils import escape

RATE = 22050
GAP_S = 1.0


def speak(text, lang, path):
    voice = "es" if lang == "es" else "en-us"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", path, text], check=True)


def seconds(path):
    return float(subprocess.run(["soxi", "-D", path], check=True, capture_output=True, text=True).stdout)


def split_of(title):
    return "test" if hashlib.sha256(title.encode()).digest()[0] % 2 else "tune"


def episode_audio(episode, chapters, work, out_mp3):
    parts, starts, words, at = [], [], [], 0.0
    silence = os.path.join(work, "gap.wav")
    subprocess.run(["sox", "-n", "-r", str(RATE), "-c", "1", silence, "trim", "0", str(GAP_S)], check=True)
    for n, c in enumerate(episode["chapters"][:chapters]):
        text = " ".join(c["summary"].split())
        if not text:
            continue
        wav = os.path.join(work, f"c{n}.wav")
        speak(text, episode["lang"], wav)
        subprocess.run(["sox", wav, "-r", str(RATE), "-c", "1", wav + ".r.wav"], check=True)
        if parts:
            parts.append(silence)
            at += GAP_S
        starts.append(round(at, 3))
        parts.append(wav + ".r.wav")
        at += seconds(wav + ".r.wav")
        words.append(text)
    joined = os.path.join(work, "episode.wav")
    subprocess.run(["sox", *parts, joined], check=True)
    subprocess.run(["lame", "--quiet", "--preset", "voice", joined, out_mp3], check=True)
    return starts, round(at, 3), words


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("base_url")
    ap.add_argument("--episodes", help="comma-separated positions in the corpus (default: every episode with chapters)")
    ap.add_argument("--chapters", type=int, default=1000, help="at most this many chapters per episode")
    args = ap.parse_args()
    episodes = json.load(open(args.corpus))["episodes"]
    chosen = [int(i) for i in args.episodes.split(",")] if args.episodes else [
        i for i, e in enumerate(episodes) if e["chapters"]]
    os.makedirs(args.out, exist_ok=True)
    truth, items = [], []
    for i in chosen:
        e = episodes[i]
        name = f"ep{i}.mp3"
        with tempfile.TemporaryDirectory() as work:
            starts, duration, words = episode_audio(e, args.chapters, work, os.path.join(args.out, name))
        truth.append({"file": name, "title": e["title"], "lang": e["lang"], "split": split_of(e["title"]),
                      "duration_s": duration, "chapter_starts_s": starts, "text": words})
        items.append(f"""<item><title>{escape(e['title'])}</title><guid>speech-{i}</guid>
<description>{escape(e['description'][:300])}</description><language>{e['lang']}</language>
<enclosure url="{escape(args.base_url + name)}" type="audio/mpeg" length="{os.path.getsize(os.path.join(args.out, name))}"/></item>""")
        print(f"{name}: {e['lang']} {len(starts)} chapters, {duration:.0f} s")
    feed = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Read aloud</title>
{chr(10).join(items)}
</channel></rss>
"""
    open(os.path.join(args.out, "feed.xml"), "w").write(feed)
    json.dump(truth, open(os.path.join(args.out, "truth.json"), "w"), indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
