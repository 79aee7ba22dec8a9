"""De-identification to the DICOM PS3.15 Annex E Basic Application Level Confidentiality
Profile, with the Retain Longitudinal Temporal Information (full dates) and Retain UIDs
options off by default. UIDs are remapped consistently: the same original UID gives the same
new UID for the life of one :class:`Deidentifier`, so a study stays a study."""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings

import pydicom
from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.sequence import Sequence
from pydicom.uid import UID_dictionary  # type: ignore[attr-defined]

# Attributes emptied (Z) rather than removed, because their modules require them present.
ZERO = {
    "AccessionNumber", "StudyID", "ReferringPhysicianName", "PatientSex",
    "PatientBirthDate", "StudyDate", "StudyTime", "ContentDate", "ContentTime",
    "ContentCreatorName", "VerifyingObserverName", "PersonName",
}
# Identifying attributes removed (X) — names, addresses, identifiers, free text, devices.
REMOVE = {
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName",
    "InstitutionCodeSequence", "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianIdentificationSequence",
    "StationName", "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianName", "PerformingPhysicianIdentificationSequence",
    "NameOfPhysiciansReadingStudy", "PhysiciansReadingStudyIdentificationSequence",
    "OperatorsName", "OperatorIdentificationSequence", "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence", "DerivationDescription", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "PatientBirthTime",
    "PatientAge", "PatientSize", "PatientWeight", "PatientAddress", "PatientMotherBirthName",
    "MilitaryRank", "BranchOfService", "MedicalRecordLocator", "EthnicGroup", "Occupation",
    "AdditionalPatientHistory", "PatientComments", "PatientTelephoneNumbers",
    "PatientReligiousPreference", "PatientInsurancePlanCodeSequence",
    "PatientPrimaryLanguageCodeSequence", "CountryOfResidence", "RegionOfResidence",
    "CurrentPatientLocation", "PatientInstitutionResidence", "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence", "ReferencedPatientSequence",
    "ReferencedPatientPhotoSequence", "ResponsiblePerson", "ResponsibleOrganization",
    "DeviceSerialNumber", "DeviceUID", "PlateID", "CassetteID", "GantryID",
    "DetectorID", "ProtocolName", "RequestingPhysician", "RequestingService",
    "RequestAttributesSequence", "RequestedProcedureDescription", "RequestedProcedureID",
    "ScheduledPerformingPhysicianName", "PerformedProcedureStepID",
    "PerformedProcedureStepDescription", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "PerformedProcedureStepEndDate",
    "PerformedProcedureStepEndTime", "PerformedStationName", "PerformedLocation",
    "ImageComments", "StudyComments", "AcquisitionComments", "TextComments",
    "StudyDescription", "SeriesDescription", "ReasonForStudy", "ReasonForTheRequestedProcedure",
    "InterpretationAuthor", "InterpretationRecorder", "InterpretationTranscriber",
    "ReviewerName", "NamesOfIntendedRecipientsOfResults", "PersonAddress",
    "PersonTelephoneNumbers", "AuthorObserverSequence", "ParticipantSequence",
    "ScheduledStudyLocation", "ScheduledStudyLocationAETitle", "ModifiedAttributesSequence",
    "OriginalAttributesSequence", "DigitalSignaturesSequence", "ContributingEquipmentSequence",
    "PatientState", "MedicalAlerts", "Allergies", "SmokingStatus", "PregnancyStatus",
    "LastMenstrualDate", "SpecialNeeds", "AcquisitionDeviceProcessingDescription",
    "ConsultingPhysicianName", "ClinicalTrialSponsorName", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest", "PatientTransportArrangements",
}
TEMPORAL_VRS = ("DA", "DT", "TM")
OVERLAY_TEXT = (0x4000, 0x0022, 0x1500)  # overlay comments, description, label


class Deidentifier:
    """Basic-profile de-identification; reuse one instance for all files of a study."""

    def __init__(self, *, retain_dates: bool = False, retain_uids: bool = False,
                 patient_id: str = "ANON", patient_name: str | None = None,
                 salt: bytes | None = None) -> None:
        self.retain_dates, self.retain_uids = retain_dates, retain_uids
        self.patient_id = patient_id
        self.patient_name = patient_name or patient_id
        self.salt = salt or secrets.token_bytes(16)
        self.uid_map: dict[str, str] = {}

    def new_uid(self, uid: str) -> str:
        """The replacement of ``uid``: the same for the same input, never the original."""
        if uid not in self.uid_map:
            digest = hashlib.sha256(self.salt + uid.encode()).digest()
            self.uid_map[uid] = "2.25." + str(int.from_bytes(digest[:16], "big"))
        return self.uid_map[uid]

    def _clean(self, ds: Dataset) -> None:
        ds.remove_private_tags()
        for elem in list(ds):
            tag, kw = elem.tag, elem.keyword
            if tag.group & 0xFF00 in (0x5000,) or (
                    tag.group & 0xFF00 == 0x6000 and tag.element in OVERLAY_TEXT):
                del ds[tag]
            elif kw == "PatientID":
                elem.value = self.patient_id
            elif kw == "PatientName":
                elem.value = self.patient_name
            elif kw in REMOVE:
                del ds[tag]
            elif kw in ZERO and not (self.retain_dates and elem.VR in TEMPORAL_VRS
                                     and kw != "PatientBirthDate"):
                elem.value = None
            elif elem.VR in TEMPORAL_VRS and not self.retain_dates:
                del ds[tag]
            elif elem.VR == "PN":
                del ds[tag]
            elif elem.VR == "UI" and not self.retain_uids:
                self._remap(elem)
            elif elem.VR == "SQ":
                for item in elem.value:
                    self._clean(item)

    def _remap(self, elem: DataElement) -> None:
        values = elem.value if isinstance(elem.value, list | pydicom.multival.MultiValue) \
            else [elem.value]
        mapped = [v if not v or str(v) in UID_dictionary else self.new_uid(str(v))
                  for v in values]
        elem.value = mapped if len(mapped) > 1 else mapped[0]

    def deidentify(self, ds: Dataset) -> Dataset:
        """De-identify a dataset in place and mark it; returns it."""
        self._clean(ds)
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "UNMODIFIED" if self.retain_dates \
            else "REMOVED"
        codes = [("113100", "Basic Application Confidentiality Profile")]
        if self.retain_dates:
            codes.append(("113106", "Retain Longitudinal Temporal Information Full Dates Option"))
        if self.retain_uids:
            codes.append(("113110", "Retain UIDs Option"))
        ds.DeidentificationMethod = "Yilian PS3.15 E.1 " + ",".join(c for c, _ in codes)
        seq = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            seq.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(seq)
        if hasattr(ds, "file_meta") and "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def deidentify_bytes(self, data: bytes) -> bytes:
        """De-identify a Part 10 file held in memory."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(io.BytesIO(data))
        except Exception as exc:
            raise ValueError(f"not a readable DICOM file: {exc}") from None
        self.deidentify(ds)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return buf.getvalue()
