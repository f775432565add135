"""The HTTP provider modules; importing this registers each in ``WIRING``."""

from kaskad.wiring import webhook  # noqa: F401
