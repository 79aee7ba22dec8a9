"""Request and response models of the administration API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from yilian.server.core.schemas import Id, Input, Level, Name, Role, Specialty

InstitutionName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                   max_length=200)]
AllianceKind = Literal["tight", "specialty"]
#: Members an alliance may have (the largest reported alliances have a few hundred).
MAX_MEMBERS = 5000


class PermissionsOut(BaseModel):
    """What the caller may do; the browser offers exactly this."""

    role: Role
    #: the Administration area (institutions, alliances, modalities)
    administration: bool
    #: keeps every institution (an administrator)
    all_institutions: bool
    #: the institutions the caller keeps when not all of them: their details, departments,
    #: modalities, experts' availability and on-call rosters
    institution_ids: list[int]
    create_institutions: bool
    manage_alliances: bool
    import_directory: bool
    modalities: bool
    #: may open the availability editor (a specialist for their own, managers for their experts)
    availability: bool
    on_call: bool


class InstitutionIn(Input):
    name: InstitutionName
    level: Level
    parent_id: Id | None = None
    local_name: InstitutionName | None = None


class InstitutionPatch(Input):
    """Only the fields given change; ``parent_id``/``local_name`` null clear them."""

    name: InstitutionName | None = None
    level: Level | None = None
    parent_id: Id | None = None
    local_name: InstitutionName | None = None


class DepartmentIn(Input):
    name: Name
    specialty: Specialty | None = None


class DepartmentPatch(Input):
    """Only the fields given change; ``specialty``/``head_id`` null clear them."""

    name: Name | None = None
    specialty: Specialty | None = None
    head_id: Id | None = None


class DepartmentAdminOut(BaseModel):
    id: int
    institution_id: int
    name: str
    specialty: str | None
    head_id: int | None
    #: staff, rosters or referrals refer to it: it cannot be removed
    in_use: bool = False


class AllianceIn(Input):
    name: InstitutionName
    kind: AllianceKind
    lead_institution_id: Id
    specialty: Specialty | None = None
    member_ids: Annotated[list[Id], Field(max_length=MAX_MEMBERS)] = []


class AlliancePatch(Input):
    name: InstitutionName | None = None
    kind: AllianceKind | None = None
    lead_institution_id: Id | None = None
    specialty: Specialty | None = None


class MembersIn(Input):
    member_ids: Annotated[list[Id], Field(max_length=MAX_MEMBERS)]


AeTitle = Annotated[str, StringConstraints(min_length=1, max_length=16)]
Address = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ModalityIn(Input):
    ae_title: AeTitle
    institution_id: Id
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    #: IP addresses or networks (10.1.2.3, 10.1.0.0/16) or "any"; none: this host only
    addresses: Annotated[list[Address], Field(max_length=64)] = []


class ModalityPatch(Input):
    institution_id: Id | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True,
                                                  max_length=200)] | None = None
    addresses: Annotated[list[Address], Field(max_length=64)] | None = None


class ModalityOut(BaseModel):
    id: int
    ae_title: str
    institution_id: int
    description: str
    #: the networks it may call from, as CIDR; empty: this host only
    networks: list[str]
    anywhere: bool
    can_edit: bool = True


class ImportProblem(BaseModel):
    table: Literal["institutions", "departments", "users", "file"]
    #: the row as a spreadsheet numbers it (the header is row 1); 0 for the table as a whole
    row: int
    column: str
    code: str
    message: str


class ImportCounts(BaseModel):
    institutions: int = 0
    departments: int = 0
    users: int = 0
    alliance_memberships: int = 0


class ImportReport(BaseModel):
    """A dry run: what would be created, and every problem found."""

    ok: bool
    counts: ImportCounts
    errors: list[ImportProblem]


class ImportResult(BaseModel):
    """A real run: what was created, and each new user's one-time initial password as CSV
    (shown once, never stored in the clear)."""

    counts: ImportCounts
    passwords_csv: str
