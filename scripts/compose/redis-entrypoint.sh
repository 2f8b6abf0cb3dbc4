#!/bin/sh
# Entry point of the local `redis:7` stand-in (scripts/compose/redis.Dockerfile).
set -e
# `docker run redis:7 --appendonly yes` or `... /path/redis.conf`: arguments of redis-server.
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac
# Started as root: give the data folder to `redis` and drop to it.
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
# Files the server creates (AOF, RDB) are private to it unless a umask was chosen.
if [ "$(umask)" = 0022 ]; then umask 0077; fi
exec "$@"
