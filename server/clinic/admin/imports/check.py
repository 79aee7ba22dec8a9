"""The dry run: every row of every table checked against the database and the rest of the
files, with the same rules as the API (levels and parents, unique names; for users the accounts
service's own rules: usernames, roles, departments of the user's institution, specialties for
specialists). Every problem is listed with its
row, column and code; nothing is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.admin.imports.reader import Upload
from yilian.server.clinic.admin.rules import RANK
from yilian.server.clinic.admin.schemas import ImportCounts
from yilian.server.core import accounts
from yilian.server.core.accounts import SPECIALTY, Directory
from yilian.server.core.models import ROLES, Alliance, Department, Institution, User
from yilian.server.core.models.alliance import LEVELS

LEVEL_WORDS = {**{lv: lv for lv in LEVELS}, "省": "province", "省级": "province",
               "市": "city", "市级": "city", "地市": "city", "县": "county", "区": "county",
               "县级": "county", "县区": "county", "乡镇": "township", "镇": "township",
               "乡": "township", "村": "village"}
ROLE_WORDS = {**{r: r for r in ROLES}, "村医": "village_doctor", "乡村医生": "village_doctor",
              "乡镇医生": "township_doctor", "基层医生": "township_doctor",
              "专家": "specialist", "专科医生": "specialist", "协调员": "coordinator",
              "医联体管理员": "coordinator", "管理员": "admin"}
SPLIT = re.compile(r"[;,；，、\s]+")
#: Lengths of the institution and department columns (an account's are the accounts rules').
LIMITS = {"name": 200, "local_name": 200, "department": 120}


@dataclass
class NewInstitution:
    row: int
    name: str
    local_name: str | None
    level: str
    #: an existing institution's id, or the name of one created by this import
    parent: int | str | None
    alliance_id: int | None


@dataclass
class NewDepartment:
    row: int
    institution: int | str
    name: str
    specialty: str | None


@dataclass
class NewUser:
    row: int
    username: str
    display_name: str
    role: str
    institution: int | str
    department: str | None
    specialties: list[str]
    title: str | None


@dataclass
class Plan:
    institutions: list[NewInstitution] = field(default_factory=list)
    departments: list[NewDepartment] = field(default_factory=list)
    users: list[NewUser] = field(default_factory=list)

    def counts(self) -> ImportCounts:
        return ImportCounts(institutions=len(self.institutions),
                            departments=len(self.departments), users=len(self.users),
                            alliance_memberships=sum(1 for i in self.institutions
                                                     if i.alliance_id is not None))


@dataclass
class _Known:
    """What the database holds, as the rows refer to it."""

    by_name: dict[str, tuple[int, str]]  # lower(name) -> (id, level)
    by_local: dict[str, list[int]]  # local name -> ids (not unique)
    departments: dict[int, set[str]]  # institution id -> lower(department names)
    alliances: dict[str, int]  # lower(name) -> id
    #: local name -> lower(name) of the institutions the file creates (unique ones only)
    new_local: dict[str, str] = field(default_factory=dict)


async def _known(session: AsyncSession) -> _Known:
    insts = (await session.execute(select(Institution.id, Institution.name,
                                          Institution.local_name, Institution.level))).all()
    by_local: dict[str, list[int]] = {}
    for iid, _, local, _ in insts:
        if local:
            by_local.setdefault(local.strip(), []).append(iid)
    depts: dict[int, set[str]] = {}
    for iid, dname in (await session.execute(select(Department.institution_id,
                                                    Department.name))).all():
        depts.setdefault(iid, set()).add(dname.lower())
    return _Known(
        by_name={n.lower(): (iid, lv) for iid, n, _, lv in insts}, by_local=by_local,
        departments=depts,
        alliances={n.lower(): aid for aid, n in (await session.execute(
            select(Alliance.id, Alliance.name))).all()})


async def check(session: AsyncSession, upload: Upload, actor: User | None = None) -> Plan:
    """Validate the upload for ``actor`` (the accounts rules: None, unrestricted); problems
    are added to ``upload.problems``."""
    known = await _known(session)
    users = upload.tables.get("users")
    directory = await accounts.Directory.load(
        session, actor, [r.get("username", "") for _, r in users.rows] if users else [])
    plan = Plan()
    new_levels = _institutions(upload, known, plan)
    new_depts = _departments(upload, known, plan, new_levels)
    _users(upload, known, plan, new_levels, new_depts, directory, actor)
    if not any(upload.tables.get(t) and upload.tables[t].rows for t in upload.tables) \
            and not upload.problems:
        upload.problem("file", 0, "", "nothing_to_import", "the files hold no rows")
    upload.problems.sort(key=lambda p: (("file", "institutions", "departments",
                                         "users").index(p.table), p.row, p.column))
    return plan


def _too_long(upload: Upload, table: str, row: int, record: dict[str, str],
              columns: tuple[str, ...] = tuple(LIMITS)) -> bool:
    bad = False
    for col in columns:
        limit = LIMITS[col]
        if len(record.get(col, "")) > limit:
            upload.problem(table, row, col, "too_long", f"at most {limit} characters")
            bad = True
    return bad


def _find(name: str, known: _Known, new: dict[str, str]) -> tuple[int | str | None, str | None]:
    """An institution named in a row: (its id or its new name, its level), or (None, None)."""
    if name.lower() in new:
        return name.lower(), new[name.lower()]
    if known.new_local.get(name) in new:
        return known.new_local[name], new[known.new_local[name]]
    if name.lower() in known.by_name:
        return known.by_name[name.lower()]
    ids = known.by_local.get(name, [])
    if len(ids) == 1:
        level = next(lv for iid, lv in known.by_name.values() if iid == ids[0])
        return ids[0], level
    return None, None


def _institutions(upload: Upload, known: _Known, plan: Plan) -> dict[str, str]:
    """Check the institutions table; returns lower(new name) -> level of the valid ones."""
    table = upload.tables.get("institutions")
    rows = table.rows if table else []
    new: dict[str, str] = {}
    first_row: dict[str, int] = {}
    for number, r in rows:  # names and levels first: a parent may come after its branch
        name, level = r.get("name", ""), LEVEL_WORDS.get(r.get("level", "").lower())
        if name and name.lower() not in first_row:
            first_row[name.lower()] = number
        if name and level and name.lower() not in known.by_name:
            new.setdefault(name.lower(), level)
    for number, r in rows:
        name = r.get("name", "")
        level = LEVEL_WORDS.get(r.get("level", "").lower())
        ok = not _too_long(upload, "institutions", number, r)
        if not name:
            upload.problem("institutions", number, "name", "required", "the name is missing")
            ok = False
        elif name.lower() in known.by_name:
            upload.problem("institutions", number, "name", "exists",
                           f"an institution is already called {name!r}")
            ok = False
        elif first_row[name.lower()] != number:
            upload.problem("institutions", number, "name", "duplicate",
                           f"{name!r} is also on row {first_row[name.lower()]}")
            ok = False
        if level is None:
            upload.problem("institutions", number, "level", "invalid_level",
                           f"{r.get('level', '')!r} is not a level; use one of "
                           f"{', '.join(LEVELS)}")
            ok = False
        parent_ref: int | str | None = None
        if r.get("parent"):
            parent_ref, parent_level = _find(r["parent"], known, new)
            if parent_ref is None:
                upload.problem("institutions", number, "parent", "unknown_institution",
                               f"no institution {r['parent']!r} here or in the file")
                ok = False
            elif parent_ref == name.lower():
                upload.problem("institutions", number, "parent", "institution_cycle",
                               "an institution cannot be its own parent")
                ok = False
            elif level and parent_level and RANK[parent_level] >= RANK[level]:
                upload.problem("institutions", number, "parent", "invalid_parent_level",
                               f"a {level} institution cannot have a {parent_level} parent")
                ok = False
        alliance_id = None
        if r.get("alliance"):
            alliance_id = known.alliances.get(r["alliance"].lower())
            if alliance_id is None:
                upload.problem("institutions", number, "alliance", "unknown_alliance",
                               f"no alliance {r['alliance']!r}; create it first")
                ok = False
        if ok and level:
            plan.institutions.append(NewInstitution(number, name, r.get("local_name") or None,
                                                    level, parent_ref, alliance_id))
    valid = {i.name.lower() for i in plan.institutions}
    locals_: dict[str, list[str]] = {}
    for i in plan.institutions:
        if i.local_name:
            locals_.setdefault(i.local_name, []).append(i.name.lower())
    known.new_local = {k: v[0] for k, v in locals_.items()
                       if len(v) == 1 and k not in known.by_local}
    return {k: v for k, v in new.items() if k in valid}


def _departments(upload: Upload, known: _Known, plan: Plan, new_levels: dict[str, str]
                 ) -> dict[int | str, set[str]]:
    """Check the departments table; returns institution ref -> lower(new department names)."""
    table = upload.tables.get("departments")
    added: dict[int | str, set[str]] = {}
    for number, r in table.rows if table else []:
        ok = not _too_long(upload, "departments", number, r)
        inst, _ = _find(r.get("institution", ""), known, new_levels) \
            if r.get("institution") else (None, None)
        if not r.get("institution"):
            upload.problem("departments", number, "institution", "required",
                           "the institution is missing")
            ok = False
        elif inst is None:
            upload.problem("departments", number, "institution", "unknown_institution",
                           f"no institution {r['institution']!r} here or in the file")
            ok = False
        name = r.get("name", "")
        if not name:
            upload.problem("departments", number, "name", "required", "the name is missing")
            ok = False
        elif len(name) > 120:
            upload.problem("departments", number, "name", "too_long", "at most 120 characters")
            ok = False
        elif inst is not None and (name.lower() in added.get(inst, set()) or (
                isinstance(inst, int) and name.lower() in known.departments.get(inst, set()))):
            upload.problem("departments", number, "name", "duplicate",
                           f"the institution already has a department {name!r}")
            ok = False
        specialty = r.get("specialty") or None
        if specialty is not None and not SPECIALTY.match(specialty):
            upload.problem("departments", number, "specialty", "invalid_specialty",
                           f"{specialty!r} is not a specialty code (lower-case letters and _, "
                           "e.g. cardiology)")
            ok = False
        if ok and inst is not None:
            added.setdefault(inst, set()).add(name.lower())
            plan.departments.append(NewDepartment(number, inst, name, specialty))
    return added


#: The columns of the users table the account fields are read from.
USER_COLUMNS = {"username": "username", "display_name": "display_name", "role": "role",
                "institution_id": "institution", "department": "department", "title": "title",
                "specialties": "specialties"}
#: The accounts service's codes that the import reports under its own (older) names.
USER_CODES = {"username_taken": "exists", "specialties_required": "specialty_required"}


def _stand_ins(directory: Directory, new_levels: dict[str, str],
               new_depts: dict[int | str, set[str]]) -> dict[str, int]:
    """Make the file's new institutions and departments known to ``directory`` under stand-in
    (negative) ids, so the accounts rules check the users placed in them; returns
    lower(new institution name) -> its stand-in id."""
    ids = {name: -n for n, name in enumerate(sorted(new_levels), start=1)}
    directory.institutions.update(ids.values())
    n = 0
    for ref, names in new_depts.items():
        inst = ref if isinstance(ref, int) else ids[ref]
        for name in names:
            n += 1
            directory.departments[-n] = inst
            directory.department_names[(inst, name.casefold())] = -n
    return ids


def _users(upload: Upload, known: _Known, plan: Plan, new_levels: dict[str, str],
           new_depts: dict[int | str, set[str]], directory: Directory,
           actor: User | None) -> None:
    """Each row checked by the accounts service's rules (every rule it breaks is listed),
    plus what only a file has: empty cells, institutions by name, repeated usernames."""
    table = upload.tables.get("users")
    stand_in = _stand_ins(directory, new_levels, new_depts)
    seen: dict[str, int] = {}
    for number, r in table.rows if table else []:
        ok = not _too_long(upload, "users", number, r, ("department",))
        empty = {c for c in ("username", "display_name", "role", "institution") if not r.get(c)}
        for column in sorted(empty):
            upload.problem("users", number, column, "required", f"the {column} is missing")
        ok = ok and not empty
        inst, _ = _find(r["institution"], known, new_levels) \
            if r.get("institution") else (None, None)
        raw_role = r.get("role", "")
        new = accounts.NewUser(
            r.get("username", ""), r.get("display_name", ""),
            ROLE_WORDS.get(raw_role.lower(), raw_role),
            inst if isinstance(inst, int) else stand_in.get(inst or "", 0),
            [s for s in SPLIT.split(r.get("specialties", "")) if s], r.get("title") or None,
            r.get("department") or None)
        checked, problems = accounts.user_problems(directory, actor, new)
        for field_name, exc in problems:
            column = USER_COLUMNS[field_name]
            if column in empty:
                continue
            message = exc.message
            if column == "institution":
                message = f"no institution {r['institution']!r} here or in the file"
            elif column == "department":
                message = f"{r['institution']!r} has no department {r['department']!r}"
            elif column == "role":
                message = f"{raw_role!r} is not a role; use one of {', '.join(ROLES)}"
            upload.problem("users", number, column, USER_CODES.get(exc.code, exc.code), message)
        username = accounts.normalize_username(new.username)
        if username and not any(f == "username" for f, _ in problems):
            if username in seen:
                upload.problem("users", number, "username", "duplicate",
                               f"{username!r} is also on row {seen[username]}")
                ok = False
            else:
                seen[username] = number
        if ok and checked is not None and inst is not None:
            plan.users.append(NewUser(number, checked.username, checked.display_name,
                                      checked.role, inst, r.get("department") or None,
                                      sorted(checked.specialties), checked.title))
