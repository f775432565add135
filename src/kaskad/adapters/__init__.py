"""Adapters to the outside world: storage, channel providers."""
