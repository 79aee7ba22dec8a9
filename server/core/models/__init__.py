"""Tables every part of Yilian shares: institutions, alliances, users, tokens, the audit log,
the notification inbox."""

from yilian.server.core.models.alliance import Alliance, AllianceMember, Department, Institution
from yilian.server.core.models.audit import AuditEntry
from yilian.server.core.models.notify import Notification
from yilian.server.core.models.people import CLINICAL_ROLES, ROLES, AuthToken, User

__all__ = [
    "CLINICAL_ROLES",
    "ROLES",
    "Alliance",
    "AllianceMember",
    "AuditEntry",
    "AuthToken",
    "Department",
    "Institution",
    "Notification",
    "User",
]
