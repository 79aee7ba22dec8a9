"""Settings from the environment (``YILIAN_*``) and the command line."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "YILIAN_"


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Settings:
    """Everything the running server needs to know; immutable once built."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("yilian-data")
    database_url: str = ""
    # Signs nothing user-visible yet but seeds per-install secrets; generated when absent.
    secret_key: str = ""
    demo: bool = False
    token_ttl_seconds: int = 12 * 3600
    login_attempts_per_minute: int = 10
    max_body_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 512 * 1024 * 1024
    display_timezone: str = "Asia/Shanghai"
    expiry_sweep_seconds: float = 60.0
    slot_horizon_days: int = 56
    # DICOM
    dicom_port: int | None = 11112
    dicom_ae_title: str = "YILIAN"
    dicom_tile_cache_mb: int = 64
    # Processes parsing received DICOM files; 0 parses on the server's own threads.
    dicom_workers: int = field(default_factory=lambda: default_dicom_workers())
    # WebRTC: the project's own STUN/TURN; no public server is ever a default.
    stun_urls: list[str] = field(default_factory=list)
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: str = ""
    turn_ttl_seconds: int = 3600
    rtc_resume_grace_seconds: float = 15.0
    redis_url: str = ""
    # Redis pub/sub channel (and key prefix) of the signalling server; one per deployment.
    rtc_redis_channel: str = "yilian-rtc"

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'yilian.sqlite3').resolve()}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-None fields replaced (coerced to the field's type)."""
        clean = {k: _coerce(k, v) for k, v in overrides.items() if v is not None}
        return replace(self, **clean)


def default_dicom_workers() -> int:
    """Processes parsing received DICOM files by default: one per core, at least four (a
    worker waits on the disk for about as long as it parses) and at most eight."""
    return max(4, min(8, os.cpu_count() or 1))


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = str(_FIELD_TYPES[name])
    if not isinstance(value, str):
        return value
    if name == "dicom_port":
        return None if value.lower() in ("off", "none", "") else int(value)
    if kind == "Path":
        return Path(value)
    if kind == "bool":
        return value.lower() in ("1", "true", "yes", "on")
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind.startswith("list"):
        return _split(value)
    return value


def settings_from_env(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``YILIAN_*`` variables, then apply explicit overrides."""
    env = os.environ if environ is None else environ
    from_env: dict[str, Any] = {}
    for name in _FIELD_TYPES:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            from_env[name] = raw
    settings = Settings().with_overrides(**from_env).with_overrides(**overrides)
    if not settings.secret_key:
        settings = replace(settings, secret_key=_load_or_create_secret(settings.data_dir))
    return settings


def _load_or_create_secret(data_dir: Path) -> str:
    """Keep a per-install secret in the data directory so restarts keep it."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    tmp.replace(path)
    return value
