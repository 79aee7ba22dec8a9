"""The DICOM index: patient, study, series and instance rows holding what QIDO needs,
plus the table of modalities (calling AE titles) allowed to send by C-STORE."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from yilian.server.core.db import Base, UTCDateTime, utcnow


class DicomPatient(Base):
    """A patient as the sending institution's DICOM files name them."""

    __tablename__ = "dicom_patients"
    __table_args__ = (UniqueConstraint("institution_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(200), default="", index=True)
    birth_date: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")


class DicomStudy(Base):
    __tablename__ = "dicom_studies"
    __table_args__ = (Index("ix_dicom_studies_inst_date", "institution_id", "study_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64), unique=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    patient_ref: Mapped[int] = mapped_column(ForeignKey("dicom_patients.id"), index=True)
    # Patient attributes are copied here so study queries need no join.
    patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    patient_name: Mapped[str] = mapped_column(String(200), default="", index=True)
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="", index=True)
    study_id: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(200), default="")
    referring_physician_name: Mapped[str] = mapped_column(String(200), default="")
    modalities: Mapped[str] = mapped_column(String(100), default="")  # backslash-joined
    num_series: Mapped[int] = mapped_column(Integer, default=0)
    num_instances: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DicomSeries(Base):
    __tablename__ = "dicom_series"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_ref: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str] = mapped_column(String(200), default="")
    body_part: Mapped[str] = mapped_column(String(16), default="")
    series_date: Mapped[str] = mapped_column(String(8), default="")
    num_instances: Mapped[int] = mapped_column(Integer, default=0)


class DicomInstance(Base):
    __tablename__ = "dicom_instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_uid: Mapped[str] = mapped_column(String(64), unique=True)
    series_ref: Mapped[int] = mapped_column(ForeignKey("dicom_series.id"), index=True)
    study_ref: Mapped[int] = mapped_column(ForeignKey("dicom_studies.id"), index=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64), index=True)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=0)
    path: Mapped[str] = mapped_column(String(300))  # relative to the DICOM storage root
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Where each frame's bytes lie in the file: [[[offset, length], ...fragments], ...frames]
    frames: Mapped[list[Any] | None] = mapped_column(JSON)
    metadata_json: Mapped[str] = mapped_column(Text)  # DICOM JSON model, bulk data left out
    received_from: Mapped[str] = mapped_column(String(32), default="stow")  # stow | cstore:AE
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DicomModality(Base):
    """A modality or PACS allowed to C-STORE to us, the institution it sends for, and the
    networks it may call from (none: this host only; see ``dicom.modalities``)."""

    __tablename__ = "dicom_modalities"

    id: Mapped[int] = mapped_column(primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    #: CIDR strings ("10.1.2.3/32", "10.1.0.0/16"; "0.0.0.0/0" and "::/0" for any).
    allowed_networks: Mapped[list[str]] = mapped_column(JSON, default=list,
                                                        server_default="[]")
