"""The recording: its directory and journal, and object storage (S3)."""
