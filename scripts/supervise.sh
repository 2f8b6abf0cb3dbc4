#!/usr/bin/env bash
# supervise.sh NAME LOG COMMAND [ARGS...]: keeps one service of scripts/run.sh running, as
# compose's `restart: unless-stopped` does. COMMAND's output is appended to LOG. When it exits
# for any reason, a line naming it and its exit status goes to stdout and it is started again
# after a delay: 1 s, doubling on each quick exit up to 30 s, back to 1 s once a run has lasted
# 60 s. SIGTERM (or SIGINT, SIGHUP) stops it: COMMAND gets SIGTERM, 20 s to exit, then SIGKILL,
# and this script exits 0 with nothing left running.
#
# Settings (environment): QT_RESTART_MIN_SECS (1), QT_RESTART_MAX_SECS (30),
# QT_RESTART_RESET_SECS (60), QT_STOP_TIMEOUT_SECS (20), QT_PID_DIR (when set, the running
# COMMAND's pid is kept in $QT_PID_DIR/NAME.pid and this script's in NAME.supervisor.pid).
set -uo pipefail

if [ $# -lt 3 ]; then
  echo "usage: supervise.sh NAME LOG COMMAND [ARGS...]" >&2
  exit 2
fi
name=$1 log=$2
shift 2
min=${QT_RESTART_MIN_SECS:-1}
max=${QT_RESTART_MAX_SECS:-30}
reset=${QT_RESTART_RESET_SECS:-60}
grace=${QT_STOP_TIMEOUT_SECS:-20}
pidfile=${QT_PID_DIR:+$QT_PID_DIR/$name.pid}

say() { echo "$(date -u +%FT%TZ) ==> $name $*"; }

child='' sleeper='' watchdog='' stopping=0
stop() {
  stopping=1
  if [ -n "$sleeper" ]; then kill -TERM "$sleeper" 2>/dev/null; fi
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null
    # The service gets its grace period, then SIGKILL.
    if [ -z "$watchdog" ]; then
      (
        trap 'kill -TERM "$s" 2>/dev/null; exit 0' TERM
        sleep "$grace" &
        s=$!
        wait "$s" && kill -KILL "$child" 2>/dev/null
      ) &
      watchdog=$!
    fi
  fi
}
trap stop TERM INT HUP

if [ -n "$pidfile" ]; then echo "$$" >"$QT_PID_DIR/$name.supervisor.pid"; fi
delay=$min
while :; do
  started=$SECONDS
  "$@" >>"$log" 2>&1 &
  child=$!
  if [ -n "$pidfile" ]; then echo "$child" >"$pidfile"; fi
  # `wait` returns early when a trapped signal arrives; wait again until the child is gone.
  while :; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || break
  done
  child=''
  if [ -n "$pidfile" ]; then rm -f "$pidfile"; fi
  if [ -n "$watchdog" ]; then
    kill -TERM "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    watchdog=''
  fi
  if [ "$stopping" = 1 ]; then
    say "stopped"
    if [ -n "$pidfile" ]; then rm -f "$QT_PID_DIR/$name.supervisor.pid"; fi
    exit 0
  fi
  up=$((SECONDS - started))
  if [ "$up" -ge "$reset" ]; then delay=$min; fi
  if [ "$status" -gt 128 ]; then
    how="killed by signal $((status - 128)) ($(kill -l $((status - 128)) 2>/dev/null || echo '?'))"
  else
    how="exit status $status"
  fi
  say "exited ($how) after ${up}s; restarting in ${delay}s"
  sleep "$delay" &
  sleeper=$!
  wait "$sleeper" 2>/dev/null
  sleeper=''
  if [ "$stopping" = 1 ]; then
    say "stopped"
    if [ -n "$pidfile" ]; then rm -f "$QT_PID_DIR/$name.supervisor.pid"; fi
    exit 0
  fi
  delay=$((delay * 2))
  if [ "$delay" -gt "$max" ]; then delay=$max; fi
done
