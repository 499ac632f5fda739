-- How many days a room keeps its messages; NULL keeps them forever. The retention sweeper
-- deletes older messages (and the room events that carried them) in small batches.
ALTER TABLE rooms ADD COLUMN retention_days BIGINT;
-- The sweeper's deletions look up old events by room and age.
CREATE INDEX room_events_room_created ON room_events (room_id, created_at);
