"""SMS providers. SMPP 3.4 (``smpp.py``) holds its own connections and reports through a sink."""

from kaskad.adapters.channels.sms.receipts import SMPP_RECEIPT_STATUS
from kaskad.adapters.channels.sms.smpp import SMPP_ERRORS, SmppConfig, SmppProvider

__all__ = ["SMPP_ERRORS", "SMPP_RECEIPT_STATUS", "SmppConfig", "SmppProvider"]
