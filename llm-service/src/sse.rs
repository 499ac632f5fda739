//! A small server-sent-events parser (the subset providers use): `data:` lines joined into
//! one event at a blank line, `event:` names, `:` comments (keep-alives) skipped, any of
//! `\n`, `\r\n` or `\r` ending a line, and bytes split anywhere, even inside a UTF-8 character.

/// One event: its name (empty for the default "message") and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

#[derive(Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    name: String,
    data: Option<String>,
    /// The last byte seen was `\r`: a following `\n` belongs to the same line ending.
    after_cr: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &byte in bytes {
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.buffer);
                    if let Some(event) = self.line(&line) {
                        events.push(event);
                    }
                }
                _ => self.buffer.push(byte),
            }
        }
        events
    }

    /// Whether a partial event is pending (bytes or data lines not yet ended by a blank line).
    pub fn has_partial_event(&self) -> bool {
        !self.buffer.is_empty() || self.data.is_some()
    }

    /// At the end of the stream: the event left unfinished (its last line or blank line
    /// missing), if it has data.
    pub fn finish(&mut self) -> Option<Event> {
        self.after_cr = false;
        let line = std::mem::take(&mut self.buffer);
        if !line.is_empty() {
            self.line(&line);
        }
        self.line(&[])
    }

    /// Bytes held for the event being read.
    pub fn pending_len(&self) -> usize {
        self.buffer.len() + self.data.as_ref().map_or(0, String::len)
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(Event {
                name: std::mem::take(&mut self.name),
                data,
            });
        }
        if line.first() == Some(&b':') {
            return None;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.name = value.to_string(),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn events_comments_and_line_endings() {
        let mut parser = SseParser::new();
        let events =
            parser.push(b": keep-alive\n\ndata: {\"a\":1}\n\ndata:x\r\n\r\nevent: error\ndata: a\ndata: b\r\r");
        assert_eq!(data(&events), vec!["{\"a\":1}", "x", "a\nb"]);
        assert_eq!(events[2].name, "error");
        assert!(!parser.has_partial_event());
    }

    #[test]
    fn bytes_split_anywhere() {
        let input = "data: héllo wörld\r\n\r\ndata: [DONE]\n\n".as_bytes();
        for split in 0..input.len() {
            let mut parser = SseParser::new();
            let mut events = parser.push(&input[..split]);
            events.extend(parser.push(&input[split..]));
            assert_eq!(data(&events), vec!["héllo wörld", "[DONE]"], "split at {split}");
        }
    }

    #[test]
    fn an_unfinished_event_is_pending_until_the_end() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"data: {\"par").is_empty());
        assert!(parser.has_partial_event());
        assert_eq!(parser.pending_len(), 11);
        assert_eq!(parser.finish().map(|e| e.data), Some("{\"par".to_string()));
        assert_eq!(parser.finish(), None);
        assert!(parser.push(b"data: [DONE]\n").is_empty());
        assert_eq!(parser.finish().map(|e| e.data), Some("[DONE]".to_string()));
        assert!(parser.push(b": comment only").is_empty());
        assert_eq!(parser.finish(), None);
    }
}
