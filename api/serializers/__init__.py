"""Serializers of the API: they check types and shapes; the rules live in the forms and services they call."""
