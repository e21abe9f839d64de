"""Talking to GitHub: an async httpx client true to the REST API."""
