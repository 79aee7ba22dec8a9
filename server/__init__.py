"""Yilian server: the aiohttp application, clinical workflows and their persistence."""
