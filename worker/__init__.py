"""calsync: integrity layer, outbox worker and remediation tools for Cal.com sync."""
