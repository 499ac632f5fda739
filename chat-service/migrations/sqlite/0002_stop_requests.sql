-- A StopGeneration that reaches an instance other than the one generating the answer asks
-- for the stop through the row; the generating instance sees it on its next write.
ALTER TABLE chat_messages ADD COLUMN stop_requested INTEGER NOT NULL DEFAULT 0;
