"""SQLAlchemy models of the clinical core."""

from server.models.alliance import Alliance, AllianceMember, Department, Institution
from server.models.audit import AuditEntry
from server.models.consultation import (
    Consultation,
    ConsultationEvent,
    ConsultationStudy,
    ReportVersion,
)
from server.models.people import AuthToken, Patient, User
from server.models.scheduling import AvailabilityException, AvailabilityRule, Slot

__all__ = [
    "Alliance",
    "AllianceMember",
    "AuditEntry",
    "AuthToken",
    "AvailabilityException",
    "AvailabilityRule",
    "Consultation",
    "ConsultationEvent",
    "ConsultationStudy",
    "Department",
    "Institution",
    "Patient",
    "ReportVersion",
    "Slot",
    "User",
]
