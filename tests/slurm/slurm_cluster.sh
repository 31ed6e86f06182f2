#!/usr/bin/env bash
# tests/slurm/slurm_cluster.sh: a real one-node Slurm cluster for the tests, on loopback ports.
#   bash tests/slurm/slurm_cluster.sh start DIR   writes DIR/slurm.conf and a munge key, starts munged, slurmctld
#                                                 and slurmd (as root, each under `timeout`, so none outlives a
#                                                 broken test run by more than LOOM_SLURM_LIFETIME seconds), and
#                                                 waits (with a deadline) until the node is idle
#   bash tests/slurm/slurm_cluster.sh stop DIR    stops the daemons by the pids recorded in DIR, removes DIR
# The tests then set SLURM_CONF=DIR/slurm.conf and use salloc, sbatch, srun, scancel as on any cluster.
# DIR (in the build tree) holds the config, pid files and logs. What holds sockets (munged's, slurmd's spool
# with its steps' sockets) and the daemons' state go in a short folder of their own, /tmp/loom-slurm.XXXXXX
# (recorded in DIR/run_dir), so a checkout in a deep folder works: a socket's path has at most 107 bytes.
# Run as root, or as a user who may `sudo -n` (the daemons then run as root, the jobs as that user).
# Node `localhost` (NodeAddr 127.0.0.1) offers 4 CPUs, 3000 MiB and the feature `loomtest`, in partition
# `loomq`, whatever the machine has (SlurmdParameters=config_overrides). Plugins that need no cgroups:
# proctrack/linuxproc, task/none. The daemons' ports are chosen free below the ephemeral range; a daemon that
# still cannot bind its port is started again on new ports (3 tries). LOOM_SLURM_FIRST_PORT=P makes the
# first try's slurmd use port P (a test holds P to see the second try happen).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi

# Root for the daemons: ourselves, or sudo without a password.
ROOT=()
if [ "$(id -u)" -ne 0 ]; then ROOT=(sudo -n); fi

stop() {
  [ -d "$dir" ] || return 0
  # Clients first (a test may have left a job), then the daemons, each by its recorded pid.
  if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid.timeout" ]; then
    SLURM_CONF="$dir/slurm.conf" timeout 5 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  local pids=()
  for name in slurmd slurmctld munged; do
    local f="$dir/$name.pid.timeout"
    [ -f "$f" ] || continue
    local pid
    pid=$(cat "$f")
    # `timeout` passes the TERM on to the daemon it runs, then exits.
    if "${ROOT[@]}" kill -0 "$pid" 2>/dev/null; then "${ROOT[@]}" kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); fi
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]}"; do
    while "${ROOT[@]}" kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if "${ROOT[@]}" kill -0 "$pid" 2>/dev/null; then "${ROOT[@]}" kill -KILL "$pid" 2>/dev/null || true; fi
  done
  if [ -f "$dir/run_dir" ]; then
    local run
    run=$(cat "$dir/run_dir")
    # Only what start made: /tmp/loom-slurm.XXXXXX.
    case "$run" in /tmp/loom-slurm.??????) "${ROOT[@]}" rm -rf "$run" ;; esac
  fi
  "${ROOT[@]}" rm -rf "$dir"
}

# A port for a daemon to listen on: below the kernel's ephemeral range (ip_local_port_range), so no
# connection another test opens meanwhile takes it as its local end, and one that nothing listens on or
# connects from now. (CI once lost a run to this: slurmd's port, 35692, free when chosen from 20000-39999,
# was taken before slurmd bound it.) Another process may still bind the same port first: start() sees a
# daemon's failed bind and starts the two daemons again on new ports.
free_port() {
  local low=32768 p
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  local base=20000 span=12000
  if [ "$low" -gt 11024 ]; then base=10000; span=$((low - 1 - base)); fi
  while :; do
    p=$((base + (RANDOM * 32768 + RANDOM) % span))
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
    if command -v ss >/dev/null && [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then continue; fi
    echo "$p"; return
  done
}

# Stops slurmctld and slurmd of a try that could not bind its ports (munged stays).
stop_daemons() {
  local pid
  for name in slurmd slurmctld; do
    [ -f "$dir/$name.pid.timeout" ] || continue
    pid=$(cat "$dir/$name.pid.timeout")
    "${ROOT[@]}" kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while "${ROOT[@]}" kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    "${ROOT[@]}" kill -KILL "$pid" 2>/dev/null || true
    "${ROOT[@]}" rm -f "$dir/$name.pid.timeout"
  done
}

start() {
  if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
    echo "slurm_cluster.sh: needs root, or sudo without a password (slurmd runs jobs as any user)" >&2; exit 1
  fi
  for tool in munged slurmctld slurmd salloc sinfo; do
    command -v "$tool" >/dev/null || { echo "slurm_cluster.sh: \`$tool\` is missing (apt-get install slurm-wlm munge)" >&2; exit 1; }
  done
  stop
  "${ROOT[@]}" mkdir -p "$dir"
  "${ROOT[@]}" chmod 0755 "$dir"
  "${ROOT[@]}" chown "$(id -u):$(id -g)" "$dir"  # our files (config, logs of the daemons' output) go here
  local run
  run=$("${ROOT[@]}" mktemp -d /tmp/loom-slurm.XXXXXX)
  echo "$run" >"$dir/run_dir"
  "${ROOT[@]}" mkdir -p "$run/munge" "$run/state" "$run/spool"
  # run/ and munge/ are 0755: munged wants no one else writing there, and clients must reach its socket.
  "${ROOT[@]}" chmod 0755 "$run" "$run/munge"
  "${ROOT[@]}" chmod 0700 "$run/state" "$run/spool"
  local lifetime=${LOOM_SLURM_LIFETIME:-1800}

  # munge: its own key, socket, pid and log in RUN/munge (munged checks that only root can write there).
  "${ROOT[@]}" dd if=/dev/urandom of="$run/munge/munge.key" bs=1024 count=1 status=none
  "${ROOT[@]}" chmod 0400 "$run/munge/munge.key"
  "${ROOT[@]}" timeout "$lifetime" munged --foreground --force --socket="$run/munge/munge.sock" --key-file="$run/munge/munge.key" \
    --pid-file="$run/munge/munged.pid" --log-file="$run/munge/munged.log" --seed-file="$run/munge/munged.seed" \
    >"$dir/munged.out" 2>&1 &
  echo $! >"$dir/munged.pid.timeout"

  local deadline=$((SECONDS + 10))
  until "${ROOT[@]}" test -S "$run/munge/munge.sock"; do
    if [ $SECONDS -ge $deadline ]; then echo "slurm_cluster.sh: munged did not start:" >&2; cat "$dir/munged.out" "$run/munge/munged.log" >&2 2>/dev/null || true; exit 1; fi
    sleep 0.1
  done
  local ctld_port slurmd_port state try
  for try in 1 2 3; do
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    if [ "$try" = 1 ] && [ -n "${LOOM_SLURM_FIRST_PORT:-}" ]; then slurmd_port=$LOOM_SLURM_FIRST_PORT; fi
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
    cat >"$dir/slurm.conf" <<CONF
ClusterName=loomtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$run/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$run/state
SlurmdSpoolDir=$run/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=3
InactiveLimit=0
MinJobAge=5
SlurmctldTimeout=30
SlurmdTimeout=30
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 RealMemory=3000 Feature=loomtest Gres=gpu:2 State=UNKNOWN
PartitionName=loomq Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    # Two GPUs that are not there: Slurm counts, allocates and binds them (CUDA_VISIBLE_DEVICES) all the same.
    cat >"$dir/gres.conf" <<CONF
NodeName=localhost Name=gpu File=/dev/null
NodeName=localhost Name=gpu File=/dev/zero
CONF
    export SLURM_CONF="$dir/slurm.conf"

    "${ROOT[@]}" timeout "$lifetime" slurmctld -D -i -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
    echo $! >"$dir/slurmctld.pid.timeout"
    "${ROOT[@]}" timeout "$lifetime" slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 &
    echo $! >"$dir/slurmd.pid.timeout"

    deadline=$((SECONDS + 60))
    state=""
    while :; do
      state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
      [ "$state" = "idle" ] && break 2
      if grep -qs "Unable to bind listen port\|Error binding slurm stream socket" "$dir"/slurmctld.log "$dir"/slurmd.log; then
        [ "$try" -lt 3 ] || break
        echo "slurm_cluster.sh: a daemon could not bind its port (try $try of 3); again on new ports" >&2
        stop_daemons
        "${ROOT[@]}" rm -f "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/slurmctld.out "$dir"/slurmd.out
        "${ROOT[@]}" find "$run/state" "$run/spool" -mindepth 1 -delete
        continue 2
      fi
      if [ $SECONDS -ge $deadline ]; then
        echo "slurm_cluster.sh: node localhost is \`$state\`, not idle, after 60 s; logs:" >&2
        tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/slurmctld.out "$dir"/slurmd.out >&2 2>/dev/null || true
        exit 1
      fi
      sleep 0.2
    done
    echo "slurm_cluster.sh: node localhost is \`$state\`, not idle: a daemon could not bind its port in 3 tries; logs:" >&2
    tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/slurmctld.out "$dir"/slurmd.out >&2 2>/dev/null || true
    exit 1
  done
  echo "slurm_cluster.sh: one-node Slurm up in $dir, sockets and state in $run (slurmctld on 127.0.0.1:$ctld_port, slurmd on 127.0.0.1:$slurmd_port)"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "slurm_cluster.sh: unknown command \`$cmd\` (start or stop)" >&2; exit 2 ;;
esac
