"""Providers reached over HTTP APIs (Infobip, Twilio, Meta WhatsApp, FCM, APNs, a generic
webhook): one base client in ``base``, signatures in ``signatures``, a module per provider."""
