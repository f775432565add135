"""Journeys: versioned, declarative multi-step scenarios, one run per contact."""
