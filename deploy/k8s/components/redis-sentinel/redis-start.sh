#!/bin/sh
# Entry point of a Redis data node (deploy/k8s/components/redis-sentinel). The node announces
# its stable name and starts as the replica of the primary the Sentinels name; if it is that
# primary (it restarted before any failover), or no Sentinel knows a primary yet (the first
# start of the stack), redis-0 is the primary.
set -eu
. /usr/local/etc/redis-ha/primary.sh
me="$(hostname).redis"
master=$(known_primary "$me")
[ -n "$master" ] || master=redis-0.redis
set -- redis-server /usr/local/etc/redis/redis.conf \
  --replica-announce-ip "$me" --replica-announce-port 6379
if [ "$master" != "$me" ]; then
  echo "redis-start: replica of $master"
  set -- "$@" --replicaof "$master" 6379
else
  echo "redis-start: primary"
fi
exec "$@"
