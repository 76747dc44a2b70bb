#!/usr/bin/env bash
# Make sure a real S3 server (Ceph radosgw) answers for the tests, and print its settings.
#
#   scripts/ceph.sh          start (or reuse) the server; prints shell assignments:
#                              DOCKYARD_S3_ENDPOINT=http://127.0.0.1:PORT
#                              DOCKYARD_S3_ACCESS_KEY=... DOCKYARD_S3_SECRET_KEY=...
#                            and writes the same lines to <state>/s3.env
#   scripts/ceph.sh stop     stop the daemons this script started (by their pid files)
#
# One node on loopback only: a monitor, one memstore OSD (objects live in RAM, at most 3 GiB) and
# radosgw, with cephx off. State, logs and pid files live under DOCKYARD_CEPH_DIR (default
# <repo>/.cache/ceph). Ports: DOCKYARD_CEPH_PORT (radosgw, default 17580), the monitor on
# PORT-4180 (v2) and PORT-800 (v1), the OSD in PORT-680..PORT-581. Idempotent: when radosgw
# already answers on the port it is reused. Installs Debian's ceph packages when run as root
# and they are missing (scripts/setup.sh test does this too). Starting takes ~15-30 s.
set -euo pipefail
cd "$(dirname "$0")/.."

state=${DOCKYARD_CEPH_DIR:-$PWD/.cache/ceph}
port=${DOCKYARD_CEPH_PORT:-17580}
mon2=$((port - 4180)) mon1=$((port - 800)) osd_lo=$((port - 680)) osd_hi=$((port - 581))
endpoint="http://127.0.0.1:$port"
access=dockyard secret=dockyard-secret
export CEPH_CONF=$state/ceph.conf

stop() {
    for daemon in rgw osd mon; do
        pidfile=$state/run/$daemon.pidx
        [[ -f $pidfile ]] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

report() {
    printf 'DOCKYARD_S3_ENDPOINT=%s\nDOCKYARD_S3_ACCESS_KEY=%s\nDOCKYARD_S3_SECRET_KEY=%s\n' \
        "$endpoint" "$access" "$secret" | tee "$state/s3.env"
}

answers() { curl -s -o /dev/null --max-time 10 "$endpoint/"; }
alive() { [[ -f $state/run/$1.pidx ]] && kill -0 "$(cat "$state/run/$1.pidx")" 2>/dev/null; }

if [[ ${1:-start} == stop ]]; then
    stop
    exit 0
fi

if [[ -f $state/s3.env ]] && alive rgw; then
    # Ours, running: on a loaded machine it may answer slowly; never restart it under the tests
    # that use it.
    for _ in $(seq 1 60); do
        if answers; then
            report
            exit 0
        fi
        sleep 1
    done
    echo "error: radosgw (pid $(cat "$state/run/rgw.pidx")) runs but does not answer on $endpoint; see $state/log" >&2
    exit 1
fi
if answers && [[ -f $state/s3.env ]]; then
    report
    exit 0
fi
if answers || (exec 3<>"/dev/tcp/127.0.0.1/$mon2") 2>/dev/null; then
    echo "error: another server already listens on $endpoint (another checkout's Ceph?);" \
        "stop it, or choose other ports with DOCKYARD_CEPH_PORT" >&2
    exit 1
fi

if ! command -v radosgw >/dev/null 2>&1 || ! command -v ceph-mon >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]]; then
        echo "installing ceph ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            ceph-mon ceph-osd radosgw ceph-common uuid-runtime >&2
    else
        echo "error: Ceph is not installed; run scripts/setup.sh test as root" >&2
        exit 1
    fi
fi

stop # leftovers of an earlier run whose radosgw no longer answers
rm -rf "$state"
mkdir -p "$state"/{run,log,mon.a,osd.0,rgw.a}
fsid=$(uuidgen)
cat >"$state/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# with auth off radosgw loops forever unless the monitor client mode allows crc
ms mon client mode = crc secure
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $state/run
admin socket = $state/run/\$name.asok
log file = $state/log/\$name.log
pid file = $state/run/\$name.pid
ms bind port min = $osd_lo
ms bind port max = $osd_hi
osd objectstore = memstore
memstore device bytes = 3221225472
mon data avail warn = 1
mon data avail crit = 1
keyring = $state/keyring
[mon.a]
mon data = $state/mon.a
[osd.0]
osd data = $state/osd.0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $state/rgw.a
# give deleted objects' RAM back within seconds (the default waits two hours)
rgw gc obj min wait = 5
rgw gc processor period = 5
rgw gc processor max time = 5
EOF
ceph-authtool --create-keyring "$state/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" --fsid "$fsid" "$state/monmap" >/dev/null
ceph-mon --mkfs -i a --monmap "$state/monmap" --keyring "$state/keyring"

ceph-mon -i a -f >"$state/log/mon.out" 2>&1 &
echo $! >"$state/run/mon.pidx"
timeout 60 ceph -s >/dev/null
uuid=$(uuidgen)
id=$(ceph osd new "$uuid")
ceph-osd -i "$id" --mkfs --osd-uuid "$uuid" >"$state/log/osd-mkfs.out" 2>&1
ceph-osd -i "$id" -f >"$state/log/osd.out" 2>&1 &
echo $! >"$state/run/osd.pidx"
up=
for _ in $(seq 1 240); do
    if ceph osd stat 2>/dev/null | grep -q '1 up'; then up=1 && break; fi
    sleep 0.25
done
[[ -n $up ]] || { echo "error: the Ceph OSD did not come up; see $state/log" >&2; exit 1; }
radosgw -n client.rgw.a -f >"$state/log/rgw.out" 2>&1 &
echo $! >"$state/run/rgw.pidx"
for _ in $(seq 1 480); do
    answers && break
    kill -0 "$(cat "$state/run/rgw.pidx")" 2>/dev/null || { echo "error: radosgw exited; see $state/log" >&2; exit 1; }
    sleep 0.25
done
answers || { echo "error: radosgw does not answer on $endpoint; see $state/log" >&2; exit 1; }
radosgw-admin user create --uid dockyard --display-name dockyard \
    --access-key "$access" --secret-key "$secret" >/dev/null
report
