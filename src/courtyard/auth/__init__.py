"""Credentials: password hashing and token generation."""
