"""LL-HLS: the packager, its playlists and feeds, the origin that serves them, replays."""
