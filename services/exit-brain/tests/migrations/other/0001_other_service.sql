-- Another service's first migration, applied to the same database before exit-brain's.
CREATE TABLE other_service_rows (id BIGINT PRIMARY KEY, note TEXT NOT NULL);
