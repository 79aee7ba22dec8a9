"""Tables of the clinical workflows: patients, consultations, reports, availability,
referrals, follow-ups and on-call rosters."""

from yilian.server.clinic.models.consultation import (
    Consultation,
    ConsultationEvent,
    ConsultationStudy,
    ReportVersion,
)
from yilian.server.clinic.models.patient import Patient
from yilian.server.clinic.models.referral import (
    FollowUp,
    OnCallShift,
    Referral,
    ReferralConsultation,
    ReferralEvent,
    ReferralMilestone,
    ReferralStudy,
)
from yilian.server.clinic.models.scheduling import AvailabilityException, AvailabilityRule, Slot

__all__ = [
    "AvailabilityException",
    "AvailabilityRule",
    "Consultation",
    "ConsultationEvent",
    "ConsultationStudy",
    "FollowUp",
    "OnCallShift",
    "Patient",
    "Referral",
    "ReferralConsultation",
    "ReferralEvent",
    "ReferralMilestone",
    "ReferralStudy",
    "ReportVersion",
    "Slot",
]
