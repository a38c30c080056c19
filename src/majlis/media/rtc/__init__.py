"""WebRTC: speakers' peer connections into the mixer, and the speaker's own client."""
