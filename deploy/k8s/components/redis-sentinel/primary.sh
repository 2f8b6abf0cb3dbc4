# Sourced by redis-start.sh and sentinel-start.sh: `known_primary ME` prints the primary that
# the first answering Sentinel of QT_REDIS_SENTINELS (other than ME) names for
# QT_REDIS_MASTER_NAME, or nothing when none answers (the stack's first start).
known_primary() {
  for node in $(echo "${QT_REDIS_SENTINELS:?}" | tr ',' ' '); do
    host=${node%:*}
    port=${node##*:}
    [ "$host" = "$1" ] && continue
    primary=$(timeout 3 redis-cli -h "$host" -p "$port" --raw \
                SENTINEL get-master-addr-by-name "${QT_REDIS_MASTER_NAME:?}" 2>/dev/null | head -n 1) || primary=""
    if [ -n "$primary" ]; then
      echo "$primary"
      return 0
    fi
  done
}
