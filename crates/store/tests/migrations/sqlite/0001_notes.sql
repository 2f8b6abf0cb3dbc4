CREATE TABLE notes (
    id BIGINT PRIMARY KEY,
    amount TEXT NOT NULL,
    label TEXT
);
