# A stand-in for the official `redis:7` image, built from Debian's redis-server 7 where no
# registry can be reached (scripts/compose-test.sh tags it `redis:7`). It behaves as the
# official image does where docker-compose.yml relies on it: `redis-server` on PATH, /data as
# the working directory and volume, the server run as user `redis` after /data is handed to
# it, a `.conf` or `--option` first argument taken as redis-server's, redis-cli for the
# healthcheck and `docker compose exec redis redis-cli`.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /usr/local/etc/redis \
 && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
