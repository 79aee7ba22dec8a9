"""Tables of the clinical workflows: patients, consultations, reports, availability."""

from yilian.server.clinic.models.consultation import (
    Consultation,
    ConsultationEvent,
    ConsultationStudy,
    ReportVersion,
)
from yilian.server.clinic.models.patient import Patient
from yilian.server.clinic.models.scheduling import AvailabilityException, AvailabilityRule, Slot

__all__ = [
    "AvailabilityException",
    "AvailabilityRule",
    "Consultation",
    "ConsultationEvent",
    "ConsultationStudy",
    "Patient",
    "ReportVersion",
    "Slot",
]
