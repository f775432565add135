"""The HTTP provider modules; importing this registers each in ``WIRING``."""
