"""Fake HTTP providers, each speaking its provider's documented API; run by ``tests.peers.http_peer``."""
