-- The W3C traceparent of a queued event, so an event published after a restart still carries
-- the trace of the intent or order it reports (NULL when traces are not exported).
ALTER TABLE exec_outbox ADD COLUMN traceparent TEXT;
