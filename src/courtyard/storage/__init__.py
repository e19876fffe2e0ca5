"""Persistence: the one data-access layer. Services reach the database only through here."""
