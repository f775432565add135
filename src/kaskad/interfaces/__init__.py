"""Interfaces: HTTP API, CLI. Thin: they translate and call services."""
