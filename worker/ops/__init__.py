"""Operator commands: migrate, pre-flight, adopt, the runbook, status and reports."""
