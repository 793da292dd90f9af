"""The loudspeaker channel: bulletins read aloud (espeak-ng) and uploaded with a broadcast
schedule to IP loudspeaker systems (truyền thanh thông minh) over their HTTP API."""
