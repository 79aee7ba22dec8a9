"""The browser client: static files served by the Yilian server (no build step).

This file makes ``web/`` a package so that a wheel carries the client with it.
"""

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
