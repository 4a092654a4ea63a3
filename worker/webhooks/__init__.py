"""`calsync webhooks`: Cal.com's webhooks in. An aiohttp service that checks each delivery's signature, bounds it,
and hands it to one SQL call (calsync.receive_webhook) that stores and applies it, exactly once."""
