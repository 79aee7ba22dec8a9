"""The server's own media peer ``sfu``: teaching broadcasts (encode once, fan out packets)."""
