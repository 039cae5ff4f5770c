#!/usr/bin/env bash
# A Milvus standalone server for tests and benchmarks (PyPI milvus==2.3.5, hash-pinned).
# usage: bash scripts/milvus.sh install
#        bash scripts/milvus.sh start DATA_DIR     (background; waits for /healthz; pid in DATA_DIR/pid)
#        bash scripts/milvus.sh stop DATA_DIR      (SIGTERM, then SIGKILL after 20 s)
# It listens on all interfaces; podseek and the tests talk to 127.0.0.1:19530 only.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$HOME/.cache/podseek/milvus"
cmd=${1:?install, start DATA_DIR or stop DATA_DIR}
case "$cmd" in
  install)
    if ! "$VENV/bin/milvus-server" --help >/dev/null 2>&1; then
      rm -rf "$VENV" && python3 -m venv "$VENV"
      "$VENV/bin/pip" install -q --no-deps --only-binary=:all: --require-hashes -r tests/requirements-milvus.txt
    fi
    ;;
  start)
    data=${2:?DATA_DIR}
    mkdir -p "$data"
    # The launcher moves to other ports when these cannot be bound (its probe does not reuse
    # addresses, so a recently stopped server's TIME_WAIT sockets block it for up to a minute).
    # Ports still taken after that belong to a live server (another run's): starting beside it
    # would send the tests to that server, so refuse and name it.
    free=""
    for _ in $(seq 1 90); do
      python3 - <<'PY' && { free=1; break; }
import socket, sys
for port in (19530, 9091):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
PY
      sleep 1
    done
    if [ -z "$free" ]; then
      echo "milvus: ports 19530/9091 are still in use after 90 s (another Milvus?):" >&2
      ss -ltnp 2>/dev/null | grep -E ':(19530|9091) ' >&2 || true
      exit 1
    fi
    setsid "$VENV/bin/milvus-server" --data "$data" >"$data/server.log" 2>&1 < /dev/null &
    echo $! >"$data/pid"
    for _ in $(seq 1 120); do
      if curl -sf http://127.0.0.1:9091/healthz >/dev/null 2>&1 \
         && python3 -c "import socket; socket.create_connection(('127.0.0.1', 19530), 1)" 2>/dev/null; then
        echo "milvus: healthy (pid $(cat "$data/pid"), log $data/server.log)"
        exit 0
      fi
      kill -0 "$(cat "$data/pid")" 2>/dev/null || { echo "milvus: exited; see $data/server.log" >&2; tail -20 "$data/server.log" >&2; exit 1; }
      sleep 1
    done
    echo "milvus: not healthy after 120 s; see $data/server.log" >&2
    exit 1
    ;;
  stop)
    data=${2:?DATA_DIR}
    [ -f "$data/pid" ] || exit 0
    pid=$(cat "$data/pid")
    # The server runs in its own session: signal the whole group (the launcher and its children).
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 10); do
      pgrep -g "$pid" >/dev/null 2>&1 || break
      sleep 0.5
    done
    rm -f "$data/pid"
    ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
