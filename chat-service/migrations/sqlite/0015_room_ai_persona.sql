-- The AI member of a room may speak as one of its owner's personas (its system prompt; its
-- name asks it too). A deleted persona leaves the AI member without one.
ALTER TABLE rooms ADD COLUMN ai_persona_id BIGINT REFERENCES personas (id) ON DELETE SET NULL;
-- Stored room events are kept for a number of days (resuming from further back is told to
-- reload); the sweep finds the old ones by age.
CREATE INDEX room_events_created ON room_events (created_at);
