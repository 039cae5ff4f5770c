#!/usr/bin/env python3
"""Fuzz Apertium's null-flush pipeline the way podseek drives it (src/translate/apertium.rs): each text
escaped for the stream format, ended by a newline and a NUL, its answer read up to the next NUL. A
text that gets no answer within 3 s stalls the pipeline (every question waits behind it); those texts
are printed and the pipeline restarted.

usage: python3 scripts/fuzz_apertium.py [eng-spa|spa-eng] [N]     (Debian's apertium + apertium-eng-spa)
"""
import os, random, select, subprocess, sys, time

PAIR = sys.argv[1] if len(sys.argv) > 1 else "eng-spa"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
MODE = subprocess.run(["apertium-wblank-mode", "-z", f"/usr/share/apertium/modes/{PAIR}.mode"],
                      capture_output=True, text=True, check=True).stdout.strip()


def escape(text):  # as `escape` in src/translate/apertium.rs
    return "".join(" " if c in "\0^" else "\\" + c if c in "\\[]$/@<>{}" else c for c in text)


def start():
    p = subprocess.Popen(["bash", "-c", MODE, "apertium", "-n", ""], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ask(p, "hello", 30)
    return p


def ask(p, text, timeout=3.0):
    p.stdin.write(escape(text).encode() + b"\n\0")
    p.stdin.flush()
    got, t0 = b"", time.time()
    while b"\0" not in got:
        ready, _, _ = select.select([p.stdout.fileno()], [], [], max(0.0, timeout - (time.time() - t0)))
        chunk = os.read(p.stdout.fileno(), 65536) if ready else b""
        if not chunk:
            return None, time.time() - t0
        got += chunk
    return got.split(b"\0")[0], time.time() - t0


random.seed(7)
blocks = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x590, 0x6ff), (0x4e00, 0x4fff), (0x1f300, 0x1f64f),
          (0x2000, 0x206f), (0x1, 0x1f), (0xe000, 0xe0ff), (0xfff0, 0xfffd)]
texts = ["\r\n\r\n", "\t" * 50, "." * 500, "¿" * 300, "a" * 1999, "^$" * 500, "\\" * 900, "[]" * 400, "<b>" * 300]
texts += ["".join(chr(random.randint(*random.choice(blocks))) for _ in range(random.randint(1, 300)))
          for _ in range(N)]
specials = list(range(1, 0x80)) + [0x85, 0xa0, 0x2028, 0x2029, 0x202e, 0xfeff, 0xfffe, 0xffff]
texts += [w for c in specials for w in ("x" + chr(c), chr(c) + " y", "hello " + chr(c))]
p, stalled, worst = start(), [], 0.0
for text in texts:
    answer, took = ask(p, text)
    if answer is None:
        stalled.append(text)
        p.kill()
        p = start()
    worst = max(worst, took)
print(f"{PAIR}: {len(texts)} texts, {len(stalled)} stalled the pipeline, slowest answer {worst * 1000:.0f} ms")
for text in stalled[:10]:
    print("  stalled:", repr(text[-40:]))
p.kill()
sys.exit(1 if stalled else 0)
