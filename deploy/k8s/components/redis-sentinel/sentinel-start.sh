#!/bin/sh
# Entry point of a Redis Sentinel (deploy/k8s/components/redis-sentinel). Sentinel rewrites its
# own file with the current primary, replicas and peers, so the file lives on the Sentinel's
# volume and is written only the first time: a restarted Sentinel remembers a failover. On that
# first start it monitors the primary another Sentinel already knows, else redis-0.
set -eu
. /usr/local/etc/redis-ha/primary.sh
name=${QT_REDIS_MASTER_NAME:?}
me="$(hostname).redis-sentinel"
conf=/data/sentinel.conf
if [ ! -s "$conf" ]; then
  master=$(known_primary "$me")
  [ -n "$master" ] || master=redis-0.redis
  # Sentinel refuses to start on a name it cannot resolve: wait for the primary's pod.
  until getent hosts "$master" >/dev/null; do
    echo "sentinel-start: waiting for $master to resolve"
    sleep 2
  done
  cat >"$conf" <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $me
sentinel announce-port 26379
sentinel monitor $name $master 6379 2
sentinel down-after-milliseconds $name 5000
sentinel failover-timeout $name 20000
sentinel parallel-syncs $name 1
CONF
fi
exec redis-server "$conf" --sentinel
