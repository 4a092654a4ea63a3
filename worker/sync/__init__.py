"""The sync path: the drain loop, planning, the Cal.com client, the rate limit, the typed contract."""
