"""Live video: the ``/rtc`` socket.io signalling namespace, rooms, TURN credentials."""

from __future__ import annotations
