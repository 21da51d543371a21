#!/usr/bin/env bash
# VDA's main job on the embedded defaults, at this stage of the project: the
# portal on an SQLite file, then a vdactl session that registers disk nodes,
# physical disks and controller nodes, creates a disk array and an exporter,
# and shows what a host would connect to. The portal then stays in the
# foreground (Ctrl-C stops it); run again, it finds its state directory and
# shows the same array.
#
#   scripts/demo.sh [--once] [--state-dir DIR] [--listen ADDR] [--bin DIR]
#
# --once stops the portal after the session (CI uses it).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/.tmp/bin
state=$here/.vda-demo
listen=127.0.0.1:9520
once=0
while [ $# -gt 0 ]; do
  case $1 in
    --once) once=1 ;;
    --state-dir) state=$2; shift ;;
    --listen) listen=$2; shift ;;
    --bin) bin=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

for b in vda-portal vdactl; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing: run 'make build' (or 'make demo')" >&2; exit 1; }
done
mkdir -p "$state"
export VDA_PORTAL=http://$listen

"$bin/vda-portal" --dsn "sqlite:$state/vda.db" --listen "$listen" --log-format text >>"$state/portal.log" 2>&1 &
portal=$!
stop() { kill -TERM "$portal" 2>/dev/null || true; wait "$portal" 2>/dev/null || true; }
trap stop EXIT
trap 'echo; echo "stopping the portal"; exit 0' INT TERM

for _ in $(seq 100); do
  "$bin/vdactl" cluster summary >/dev/null 2>&1 && break
  kill -0 "$portal" 2>/dev/null || { echo "demo: the portal did not start; see $state/portal.log" >&2; tail -5 "$state/portal.log" >&2; exit 1; }
  sleep 0.1
done

say() { printf '\n\033[1m$ vdactl %s\033[0m\n' "$*"; "$bin/vdactl" "$@"; }

echo "VDA portal on $VDA_PORTAL, store sqlite:$state/vda.db (log: $state/portal.log)"
if "$bin/vdactl" da get demo-da >/dev/null 2>&1; then
  echo "found the cluster from an earlier run in $state"
else
  truncate -s 1G "$state/aio-disk0.img"
  say dn create dn0 --agent-address 127.0.0.1:9720 --traddr 127.0.0.1 --trsvcid 4420 --location rack-a
  say dn create dn1 --agent-address 127.0.0.1:9721 --traddr 127.0.0.1 --trsvcid 4421 --location rack-b
  say pd create --dn dn0 pd0 --malloc-size 2GiB
  say pd create --dn dn1 pd0 --malloc-size 2GiB
  say pd create --dn dn1 pd1 --aio-path "$state/aio-disk0.img" --description "capacity comes with the agent's first report"
  say cn create cn0 --agent-address 127.0.0.1:9820 --traddr 127.0.0.1 --trsvcid 4430 --location rack-a
  say cn create cn1 --agent-address 127.0.0.1:9821 --traddr 127.0.0.1 --trsvcid 4431 --location rack-b
  say da create demo-da --size 1GiB --vd-count 2 --strip-size-kb 64 --cntlr-count 2
  say exp create --da demo-da host0 --host-nqn nqn.2014-08.org.nvmexpress:uuid:8f6c3a2e-0b1d-4c5e-9f7a-1b2c3d4e5f60
  echo
  echo "Bad input gets a clear error and changes nothing:"
  say da create "bad name" --size 1GiB || true
  say da create huge --size 100TiB || true
  say dn delete dn0 || true
fi
say pd list --dn dn1
say da get demo-da
say exp get --da demo-da host0
say cluster summary

if [ "$once" = 1 ]; then
  exit 0
fi
cat <<TXT

The portal keeps running: try vdactl from another terminal, for example
  export VDA_PORTAL=$VDA_PORTAL
  $bin/vdactl da list
  $bin/vdactl da create da1 --size 512MiB
Press Ctrl-C to stop.
TXT
wait "$portal"
