-- The host's boot id at execution's last start: when it changes, the host restarted, and the
-- commits made just before may not have reached the disk (see src/host.rs).
CREATE TABLE exec_host (
    id         BIGINT PRIMARY KEY,
    boot_id    TEXT NOT NULL,
    started_at BIGINT NOT NULL
);
