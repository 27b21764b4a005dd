#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, to try the Slurm grid (scripts/slurm_grid.py) and to test it.
#   bash scripts/slurm_cluster.sh start    # munged + slurmctld + slurmd on localhost; prints the SLURM_CONF to export
#   bash scripts/slurm_cluster.sh status   # sinfo
#   bash scripts/slurm_cluster.sh stop
# Needs Debian's slurm-wlm (`apt-get install slurm-wlm`; as root, `start` installs it when missing) and runs
# the daemons as the current user. Its state, logs and slurm.conf live in $SLURM_STATE (default
# /tmp/lthlib-slurm). On a real cluster none of this is needed: submit with scripts/slurm_grid.py there.
set -euo pipefail
state=${SLURM_STATE:-/tmp/lthlib-slurm}
conf=$state/slurm.conf
node=$(hostname -s)

write_conf() {
  mkdir -p "$state/ctld" "$state/d" "$state/munge"
  cat > "$conf" <<EOF
ClusterName=lthlib
SlurmctldHost=$node(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$state/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  if ! command -v slurmctld >/dev/null; then
    [ "$(id -u)" = 0 ] || {
      echo "error: no slurmctld; install Debian's slurm-wlm (sudo apt-get install slurm-wlm)" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null; }
  fi
  stop 2>/dev/null || true
  write_conf
  key=$state/munge/munge.key  # a key of our own: the daemons and clients of this cluster only
  [ -f "$key" ] || { head -c 1024 /dev/urandom > "$key"; chmod 600 "$key"; }
  munged --key-file "$key" --socket "$state/munge/munge.socket.2" --pid-file "$state/munge/munged.pid" \
    --log-file "$state/munge/munged.log" --seed-file "$state/munge/munged.seed" --force
  slurmctld -f "$conf"
  slurmd -f "$conf"
  export SLURM_CONF=$conf
  for _ in $(seq 60); do  # the node registers within seconds
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "Slurm is up (node $node). In every shell that submits: export SLURM_CONF=$conf"
      return
    fi
    sleep 1
  done
  echo "error: the node did not come up; see $state/slurmctld.log and $state/slurmd.log" >&2
  exit 1
}

stop() {
  for pid in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/munge/munged.pid"; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    rm -f "$pid"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) SLURM_CONF=$conf sinfo ;;
  *) sed -n '2,8p' "$0"; exit 2 ;;
esac
