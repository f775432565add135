"""Fake HTTP providers, each speaking its provider's documented API.

Run by ``tests.peers.http_peer.run_fake``."""
