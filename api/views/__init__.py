"""Thin API views: each validates with a serializer, calls one selector or service, answers JSON."""
