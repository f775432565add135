"""kaskad: an omnichannel customer-messaging orchestrator."""

__version__ = "0.1.0"
