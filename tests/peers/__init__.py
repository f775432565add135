"""Real protocol peers that kaskad's integration tests and benchmarks talk to over sockets."""
