"""Settings from the environment (``YILIAN_*``) and the command line, grouped by area.

Each group is a pydantic-settings class reading its own ``YILIAN_*`` variables, so the names
stay those of the README (``YILIAN_DICOM_PORT`` is ``settings.dicom.port``). The command line
and tests override fields by their flat names (``dicom_port=0``) through
:meth:`Settings.with_overrides`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "YILIAN_"

#: A list given in the environment as ``a,b,c``.
UrlList = Annotated[list[str], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def default_dicom_workers() -> int:
    """Processes parsing received DICOM files by default: one per core, at least four (a
    worker waits on the disk for about as long as it parses) and at most eight."""
    return max(4, min(8, os.cpu_count() or 1))


class _Group(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid",
                                      populate_by_name=True)


class AuthSettings(_Group):
    """Logins and tokens."""

    token_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    #: Failed logins per account per minute before that account is refused for a while.
    login_attempts_per_minute: int = Field(default=10, gt=0)
    #: Failed logins per client address per minute (any accounts) before the address is.
    login_attempts_per_address_per_minute: int = Field(default=100, gt=0)
    #: Accounts: this many wrong passwords, each within ``lockout_window_seconds`` of the
    #: one before, lock the account for ``lockout_seconds`` (an admin may unlock it sooner).
    lockout_attempts: int = Field(default=5, gt=0)
    lockout_window_seconds: int = Field(default=900, gt=0)
    lockout_seconds: int = Field(default=900, gt=0)
    #: The shortest password a user may choose.
    password_min_length: int = Field(default=10, ge=8, le=128)


class ClinicSettings(_Group):
    """The clinical workflows' clocks."""

    expiry_sweep_seconds: float = Field(default=60.0, gt=0)
    slot_horizon_days: int = Field(default=56, gt=0)
    #: A green-channel referral still unanswered this long after its request escalates (once)
    #: to the receiving department's head and the coordinators.
    referral_escalate_after_seconds: float = Field(default=300.0, gt=0)
    #: How often referrals are checked for expiry and escalation; escalation fires at most
    #: this late.
    referral_sweep_seconds: float = Field(default=15.0, gt=0)


class DicomSettings(_Group):
    """The image store, DICOMweb and the C-STORE SCP (``YILIAN_DICOM_*``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX + "DICOM_")

    #: The SCP's port; 0 = any free port, None (``off``) = no SCP.
    port: int | None = Field(default=11112, ge=0, le=65535)
    ae_title: str = Field(default="YILIAN", min_length=1, max_length=16)
    tile_cache_mb: int = Field(default=64, ge=0)
    #: Processes parsing received DICOM files; 0 parses on the server's own threads.
    workers: int = Field(default_factory=default_dicom_workers, ge=0)
    #: DICOM connections at once (associated or still negotiating), and of those from one
    #: peer address (addresses no modality is registered for share one such quota).
    max_associations: int = Field(default=20, ge=1)
    max_associations_per_address: int = Field(default=4, ge=1)
    #: Seconds a new connection has to finish its TLS handshake and A-ASSOCIATE-RQ.
    acse_timeout: float = Field(default=10.0, gt=0)
    #: Seconds to wait for the next message of a DIMSE operation under way.
    dimse_timeout: float = Field(default=60.0, gt=0)
    #: Seconds an association may stay silent before it is aborted.
    network_timeout: float = Field(default=60.0, gt=0)
    #: DICOM over TLS: the SCP's certificate chain and key (PEM); with ``tls_ca``, callers
    #: must present a certificate signed by that CA.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None

    @field_validator("port", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("off", "none", ""):
            return None
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> DicomSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("dicom_tls_cert and dicom_tls_key go together")
        if self.tls_ca is not None and self.tls_cert is None:
            raise ValueError("dicom_tls_ca needs dicom_tls_cert and dicom_tls_key")
        return self


class RtcSettings(_Group):
    """Video: the project's own STUN/TURN (no public server is ever a default) and resume."""

    stun_urls: UrlList = Field(default_factory=list)
    turn_urls: UrlList = Field(default_factory=list)
    turn_secret: str = ""
    turn_ttl_seconds: int = Field(default=3600, gt=0)
    resume_grace_seconds: float = Field(
        default=15.0, ge=0, validation_alias=ENV_PREFIX + "RTC_RESUME_GRACE_SECONDS")
    #: Redis pub/sub channel (and key prefix) of the signalling server; one per deployment.
    redis_channel: str = Field(default="yilian-rtc",
                               validation_alias=ENV_PREFIX + "RTC_REDIS_CHANNEL")
    #: How often each process re-checks its sockets' tokens (revoked elsewhere, expired, user
    #: deactivated) and whether their rooms are still open; one query each per round.
    recheck_seconds: float = Field(default=5.0, gt=0,
                                   validation_alias=ENV_PREFIX + "RTC_RECHECK_SECONDS")
    #: Longest chat line, in characters.
    chat_max_chars: int = Field(default=2000, gt=0, le=100_000,
                                validation_alias=ENV_PREFIX + "RTC_CHAT_MAX_CHARS")
    #: Chat lines a user may send at once, then ``chat_per_second`` (per process).
    chat_burst: int = Field(default=10, gt=0, validation_alias=ENV_PREFIX + "RTC_CHAT_BURST")
    chat_per_second: float = Field(default=1.0, gt=0,
                                   validation_alias=ENV_PREFIX + "RTC_CHAT_PER_SECOND")

    #: Teaching broadcasts: the presenter's video ceiling (bit/s), whether the relay offers
    #: a 320x240 layer for weak links, and that layer's bitrate.
    teaching_max_bitrate: int = Field(default=1_500_000, ge=100_000, le=20_000_000,
                                      validation_alias=ENV_PREFIX + "RTC_TEACHING_MAX_BITRATE")
    teaching_low_layer: bool = Field(default=True,
                                     validation_alias=ENV_PREFIX + "RTC_TEACHING_LOW_LAYER")
    teaching_low_bitrate: int = Field(default=280_000, ge=50_000, le=5_000_000,
                                      validation_alias=ENV_PREFIX + "RTC_TEACHING_LOW_BITRATE")

    _split_urls = field_validator("stun_urls", "turn_urls", mode="before")(_split)


class Settings(_Group):
    """Everything the running server needs to know; immutable once built."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("yilian-data")
    database_url: str = ""
    #: PostgreSQL connections each server process keeps open (a third more at a peak): below
    #: the busy hour's concurrent transactions, connections are opened and closed all the time
    #: (each re-preparing its statements).
    database_pool_size: int = Field(default=30, ge=1, le=500)
    #: Seeds per-install secrets (national-ID encryption); generated when absent.
    secret_key: str = ""
    demo: bool = False
    max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    #: Parts one STOW-RS upload may hold (413 beyond).
    max_upload_parts: int = Field(default=10_000, gt=0)
    #: Distinct frames one WADO-RS frames request may name (400 beyond).
    max_frames_per_request: int = Field(default=256, gt=0)
    #: Seconds a connection has to send a request's complete headers, from its opening or
    #: from its previous response (an idle keep-alive connection is closed after it too).
    header_timeout_seconds: float = Field(default=15.0, gt=0)
    #: Seconds a request body may go without a byte while the server waits for it (408).
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    display_timezone: str = "Asia/Shanghai"
    #: Shared state between server processes (signalling); none for a single process.
    redis_url: str = ""
    #: Server processes sharing the HTTP port (``yilian serve --workers``); more than one
    #: needs ``redis_url`` (and PostgreSQL, in production).
    workers: int = Field(default=1, ge=1, le=64)
    #: The event loop each server process runs: ``uvloop`` (libuv; its sockets, callbacks
    #: and timers take less of the CPU per request than asyncio's own loop) or ``asyncio``.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    #: Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: UrlList = Field(default_factory=list)
    #: The address clients use (e.g. https://yilian.example-hospital.cn), for the URLs in
    #: DICOMweb answers; unset, the request's own Host is used when it is a plain host[:port].
    public_url: str = ""
    #: /healthz reports the disk low (503) when the data directory's file system has less
    #: free space than both of these: MiB, and per cent of its size.
    min_free_disk_mb: int = Field(default=512, ge=0)
    min_free_disk_percent: float = Field(default=1.0, ge=0, le=100)
    #: A secret Prometheus sends as a bearer token to read /metrics (admins' tokens work too).
    metrics_token: str = ""
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings())
    clinic: ClinicSettings = Field(default_factory=lambda: ClinicSettings())
    dicom: DicomSettings = Field(default_factory=lambda: DicomSettings())
    rtc: RtcSettings = Field(default_factory=lambda: RtcSettings())

    _split_proxies = field_validator("trusted_proxies", mode="before")(_split)

    @classmethod
    def defaults(cls) -> Settings:
        """Every default, whatever the environment says (tests, tools)."""
        return cls.model_validate({name: group.model_validate({})
                                   for name, group in _GROUPS.items()})

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'yilian.sqlite3').resolve()}"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-None fields replaced, by flat name (``port``,
        ``dicom_port``, ``turn_urls``...), validated as if they came from the environment."""
        top: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {}
        for name, value in overrides.items():
            if value is None:
                continue
            group, field = _FLAT.get(name, (None, name))
            if group is None:
                if field not in Settings.model_fields or field in _GROUPS:
                    raise ValueError(f"unknown setting {name!r}")
                top[field] = value
            else:
                groups.setdefault(group, {})[field] = value
        data = self.model_dump(exclude=set(_GROUPS))
        data.update(top)
        for group, cls in _GROUPS.items():
            current = getattr(self, group)
            data[group] = (cls.model_validate(current.model_dump() | groups[group])
                           if group in groups else current)
        return Settings.model_validate(data)


_GROUPS: dict[str, type[_Group]] = {"auth": AuthSettings, "clinic": ClinicSettings,
                                    "dicom": DicomSettings, "rtc": RtcSettings}


def _flat_names() -> dict[str, tuple[str | None, str]]:
    """flat name -> (group, field): the group field's environment variable without
    ``YILIAN_``, lowercased (``dicom_port`` is YILIAN_DICOM_PORT, ``dicom.port``)."""
    names: dict[str, tuple[str | None, str]] = {}
    for group, cls in _GROUPS.items():
        for field, info in cls.model_fields.items():
            alias = info.validation_alias
            env = alias if isinstance(alias, str) else cls.model_config["env_prefix"] + field
            names[env[len(ENV_PREFIX):].lower()] = (group, field)
    return names


_FLAT = _flat_names()


def settings_from_env(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``YILIAN_*`` variables, then apply explicit overrides (flat names).

    ``environ`` replaces the process environment (tests)."""
    if environ is None:
        settings = Settings()  # reads os.environ (pydantic-settings)
    else:
        env = {k[len(ENV_PREFIX):].lower(): v for k, v in environ.items()
               if k.startswith(ENV_PREFIX)}
        known = {k: v for k, v in env.items() if k in _FLAT or
                 (k in Settings.model_fields and k not in _GROUPS)}
        settings = Settings.defaults().with_overrides(**known)
    settings = settings.with_overrides(**overrides)
    if not settings.secret_key:
        settings = settings.with_overrides(secret_key=_load_or_create_secret(settings.data_dir))
    return settings


def _load_or_create_secret(data_dir: Path) -> str:
    """Keep a per-install secret in the data directory so restarts keep it."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    tmp.replace(path)
    return value
