"""Audio formats every part shares: PCM conversion, Opus, AAC and fragmented MP4."""
