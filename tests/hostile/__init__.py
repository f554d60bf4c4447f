"""Tests against a misbehaving server: one fixture, the request's path picks the attack."""
