#!/usr/bin/env bash
# A single-node Slurm cluster for the integration test, started by hand (no systemd):
#   cluster.sh install          apt-get the Debian packages (slurm-wlm, munge, slurmdbd, mariadb-server)
#   cluster.sh up DIR           munged, mariadbd, slurmdbd, slurmctld, slurmd; config and state in DIR
#   cluster.sh down DIR         stop them by PID
# Clients find the cluster through SLURM_CONF=DIR/slurm.conf. Must run as root.
set -euo pipefail
cmd=${1:?usage: cluster.sh install|up DIR|down DIR}

if [ "$cmd" = install ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server >/dev/null
  exit 0
fi

D=${2:?cluster folder}
mkdir -p "$D"/{state,spool,log,mysql,run}

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid; pid=$(cat "$f" 2>/dev/null || true)
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$f"
}

if [ "$cmd" = down ]; then
  for p in slurmd slurmctld slurmdbd mysqld munged; do stop_pidfile "$D/run/$p.pid"; done
  exit 0
fi

[ "$cmd" = up ] || { echo "unknown command $cmd" >&2; exit 2; }
HOST=$(hostname -s)

# munge: the authentication every Slurm daemon and client uses.
mkdir -p /run/munge /etc/munge /var/lib/munge /var/log/munge
[ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid"
  cp /run/munge/munged.pid "$D/run/munged.pid"
fi

# MariaDB for slurmdbd: submitit reads job states through sacct, which needs accounting.
if [ ! -d "$D/mysql/mysql" ]; then mariadb-install-db --user=mysql --datadir="$D/mysql" >"$D/log/mariadb-install.log" 2>&1; fi
chown -R mysql:mysql "$D/mysql" "$D/run"
(mariadbd --user=mysql --datadir="$D/mysql" --socket="$D/run/mysqld.sock" --pid-file="$D/run/mysqld.pid" \
   --bind-address=127.0.0.1 --port=3307 >"$D/log/mariadb.log" 2>&1 &)
for _ in $(seq 1 100); do [ -S "$D/run/mysqld.sock" ] && break; sleep 0.2; done
mariadb --socket="$D/run/mysqld.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'stilts';
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'stilts';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  FLUSH PRIVILEGES;"

MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat >"$D/slurmdbd.conf" <<C
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=stilts
StorageLoc=slurm_acct_db
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
C
chmod 600 "$D/slurmdbd.conf"
# proctrack/linuxproc + task/none: no cgroups needed; KillWait 5 s keeps cancellation quick.
# The node offers every core: GNU nproc would report OMP_NUM_THREADS instead where it is set (the
# test processes set it to share the cores), and a one-CPU node runs one job at a time.
cat >"$D/slurm.conf" <<C
ClusterName=stilts
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=5
MinJobAge=300
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MpiDefault=none
NodeName=$HOST CPUs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
C
export SLURM_CONF="$D/slurm.conf"
/usr/sbin/slurmdbd   # reads slurmdbd.conf from SLURM_CONF's folder
for _ in $(seq 1 100); do sacctmgr -i show cluster >/dev/null 2>&1 && break; sleep 0.3; done
sacctmgr -i add cluster stilts >/dev/null 2>&1 || true
/usr/sbin/slurmctld -f "$D/slurm.conf"
/usr/sbin/slurmd -f "$D/slurm.conf"
for _ in $(seq 1 120); do sinfo -h -o %T 2>/dev/null | grep -q idle && exit 0; sleep 0.5; done
echo "the node did not come up idle; see $D/log" >&2
sinfo >&2 || true
exit 1
