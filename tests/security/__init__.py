"""Tenant isolation, secrets, rate limiting and input limits, tested through the HTTP API."""
