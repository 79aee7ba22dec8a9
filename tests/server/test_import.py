"""Import of institutions, departments and users from CSV and Excel: the dry run lists every
bad row (row, column, code) and changes nothing; a real run is all or nothing, audited, and
hands out one-time initial passwords that must be changed at first login."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from sqlalchemy import func, select

from tests.conftest import Api
from tests.server.directory_helpers import FIVE_LEVEL, SHALANG, audit_entries, by_name
from tests.server.import_files import csv_bytes, form, xlsx_bytes
from yilian.server.core import keys
from yilian.server.core.models import Department, Institution, User

INSTITUTIONS = [
    ["名称", "中文名称", "级别", "上级机构", "医联体"],
    ["Xiadong Town Health Centre", "霞洞镇卫生院", "乡镇", "Dianbai District People's Hospital",
     FIVE_LEVEL],
    ["Xiadong Village Clinic", "霞洞村卫生站", "village", "Xiadong Town Health Centre", ""],
]
DEPARTMENTS = [
    ["institution", "name", "specialty"],
    ["Xiadong Town Health Centre", "全科", "general_practice"],
    [SHALANG, "康复科", "rehabilitation"],
]
USERS = [
    ["username", "display_name", "role", "institution", "department", "specialties", "title"],
    ["xiadong_li", "李华", "township_doctor", "Xiadong Town Health Centre", "全科",
     "general_practice", "主治医师"],
    ["xiadong_village", "王芳", "村医", "霞洞村卫生站", "", "", ""],
    ["shalang_rehab", "陈明", "specialist", SHALANG, "康复科", "rehabilitation；general_practice",
     "副主任医师"],
]


async def _counts(api: Api) -> tuple[int, int, int]:
    async with api.server.app[keys.DATABASE].read() as session:
        return tuple([await session.scalar(select(func.count()).select_from(t))  # type: ignore[return-value]
                      for t in (Institution, Department, User)])


async def _post(client: Api, path: str, **files: bytes) -> tuple[int, Any]:
    return await client.request("POST", path, data=form(**files))


async def test_csv_import_with_chinese_names_dry_run_then_real(api: Api) -> None:
    admin = await api.login("admin")
    before = await _counts(api)
    files = {"institutions": csv_bytes(INSTITUTIONS), "departments": csv_bytes(DEPARTMENTS),
             "users": csv_bytes(USERS, bom=False)}
    status, report = await _post(admin, "/api/imports/dry-run", **files)
    assert status == 200, report
    assert report == {"ok": True, "errors": [], "counts": {
        "institutions": 2, "departments": 2, "users": 3, "alliance_memberships": 1}}
    assert await _counts(api) == before

    status, result = await _post(admin, "/api/imports", **files)
    assert status == 201, result
    assert result["counts"]["users"] == 3
    sheet = list(csv.reader(io.StringIO(result["passwords_csv"].lstrip("\ufeff"))))
    assert sheet[0] == ["username", "display_name", "institution", "initial_password"]
    rows = {r[0]: r for r in sheet[1:]}
    assert rows["xiadong_village"][1:3] == ["王芳", "Xiadong Village Clinic"]
    assert all(len(r[3]) == 16 for r in rows.values())
    assert len({r[3] for r in rows.values()}) == 3
    assert await _counts(api) == (before[0] + 2, before[1] + 2, before[2] + 3)

    inst = await by_name(admin)
    town, village = inst["Xiadong Town Health Centre"], inst["Xiadong Village Clinic"]
    assert (town["level"], town["local_name"]) == ("township", "霞洞镇卫生院")
    assert village["parent_id"] == town["id"]
    five = next(a for a in (await admin.get("/api/alliances"))[1] if a["name"] == FIVE_LEVEL)
    assert town["id"] in five["member_ids"] and village["id"] not in five["member_ids"]
    async with api.server.app[keys.DATABASE].read() as session:
        users = {u.username: u for u in await session.scalars(select(User).where(
            User.username.in_(list(rows))))}
    assert all(u.must_change_password and u.active for u in users.values())
    assert users["shalang_rehab"].specialties == ["general_practice", "rehabilitation"]
    assert users["xiadong_village"].role == "village_doctor"
    assert users["xiadong_li"].department_id is not None
    # the one-time password logs in (the account then has to choose its own)
    status, body = await api.post("/api/auth/login", {"username": "xiadong_li",
                                                      "password": rows["xiadong_li"][3]})
    assert status == 200, body
    entry = (await audit_entries(api, "directory"))[-1]
    assert entry.action == "import" and entry.detail["after"]["users"] == 3  # type: ignore[index]
    assert entry.detail["after"]["usernames"] == ["xiadong_li", "xiadong_village",  # type: ignore[index]
                                                  "shalang_rehab"]
    # each new account is audited as if created by hand, with its fields
    created = {e.detail["after"]["username"]: e for e in await audit_entries(api, "user")  # type: ignore[index]
               if e.action == "create_user"}
    assert set(created) >= set(rows)
    assert created["xiadong_li"].resource_id == str(users["xiadong_li"].id)
    assert created["xiadong_li"].detail["after"]["role"] == "township_doctor"  # type: ignore[index]
    # the same file again: everything now exists, nothing is written twice
    status, report = await _post(admin, "/api/imports", **files)
    assert status == 422 and report["error"]["code"] == "import_invalid"
    assert {e["code"] for e in report["error"]["details"]["errors"]} == {"exists", "duplicate"}
    assert await _counts(api) == (before[0] + 2, before[1] + 2, before[2] + 3)


BAD_USERS = [
    ["username", "display_name", "role", "institution", "department", "specialties"],
    ["ok_user", "Fine", "township_doctor", SHALANG, "General Practice", ""],   # row 2
    ["township", "Taken", "township_doctor", SHALANG, "", ""],                  # 3: exists
    ["ok_user", "Twice", "township_doctor", SHALANG, "", ""],                   # 4: duplicate
    ["", "No name", "township_doctor", SHALANG, "", ""],                        # 5: required
    ["bad user!", "X", "nurse", "Nowhere Hospital", "", ""],                    # 6: 3 problems
    ["spec", "S", "specialist", SHALANG, "Cardiology", ""],                     # 7: 2 problems
    ["spec2", "S", "specialist", SHALANG, "", "Cardiology"],                    # 8: bad code
]


async def test_a_file_with_errors_changes_nothing_and_lists_every_bad_row(api: Api) -> None:
    admin = await api.login("admin")
    before = await _counts(api)
    insts = [["name", "level", "parent", "alliance"],
             ["Good Town", "township", "", ""],                                 # row 2
             ["Bad Level", "hamlet", "", ""],                                   # 3
             ["Upside Down", "county", "Good Town", ""],                        # 4
             ["Lost", "village", "Atlantis", "No Such Alliance"],               # 5
             ["Good Town", "township", "", ""],                                 # 6: duplicate
             [SHALANG, "township", "", ""]]                                     # 7: exists
    files = {"workbook": xlsx_bytes({"institutions": insts, "users": BAD_USERS})}
    for path in ("/api/imports/dry-run", "/api/imports"):
        status, body = await _post(admin, path, **files)
        report = body if path.endswith("dry-run") else body["error"]["details"]
        assert status == (200 if path.endswith("dry-run") else 422), body
        assert report["ok"] is False
        got = [(e["table"], e["row"], e["column"], e["code"]) for e in report["errors"]]
        assert got == [
            ("institutions", 3, "level", "invalid_level"),
            ("institutions", 4, "parent", "invalid_parent_level"),
            ("institutions", 5, "alliance", "unknown_alliance"),
            ("institutions", 5, "parent", "unknown_institution"),
            ("institutions", 6, "name", "duplicate"),
            ("institutions", 7, "name", "exists"),
            ("users", 3, "username", "exists"),
            ("users", 4, "username", "duplicate"),
            ("users", 5, "username", "required"),
            ("users", 6, "institution", "unknown_institution"),
            ("users", 6, "role", "invalid_role"),
            ("users", 6, "username", "invalid_username"),
            ("users", 7, "department", "unknown_department"),
            ("users", 7, "specialties", "specialty_required"),
            ("users", 8, "specialties", "invalid_specialty"),
        ], got
        assert all(e["message"] for e in report["errors"])
    assert await _counts(api) == before


def damaged_xlsx(good: bytes) -> bytes:
    """A workbook whose first sheet's XML is cut in half (openpyxl's read-only mode fails
    only when the rows are read)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                data = data[:len(data) // 2]
            dst.writestr(item, data)
    return out.getvalue()


async def test_xlsx_per_table_gb18030_csv_and_bad_files(api: Api) -> None:
    admin = await api.login("admin")
    users = [USERS[0], ["gb_user", "黄小明", "township_doctor", "沙琅镇中心卫生院", "", "", ""]]
    status, report = await _post(admin, "/api/imports/dry-run",
                                 users=csv_bytes(users, encoding="gb18030"))
    assert status == 200 and report["ok"], report
    status, report = await _post(admin, "/api/imports/dry-run",
                                 institutions=xlsx_bytes({"机构": INSTITUTIONS}))
    assert status == 200 and report["ok"] and report["counts"]["institutions"] == 2, report
    cases: list[tuple[dict[str, bytes], str]] = [
        ({"users": b"PK\x03\x04 not really a zip"}, "unreadable_file"),
        ({"users": b"\xff\xfe\x00\x00binary"}, "unreadable_file"),
        ({"workbook": csv_bytes(USERS)}, "unreadable_file"),
        ({"workbook": xlsx_bytes({"Sheet9": USERS})}, "no_tables"),
        ({"users": csv_bytes([["username", "colour"], ["a", "red"]])}, "unknown_column"),
        ({"users": b""}, "empty_table"),
        ({"users": csv_bytes([USERS[0]])}, "nothing_to_import"),
        ({"users": damaged_xlsx(xlsx_bytes({"users": USERS}))}, "unreadable_file"),
    ]
    for files, code in cases:
        status, report = await _post(admin, "/api/imports/dry-run", **files)
        assert status == 200 and not report["ok"], (files, report)
        assert code in {e["code"] for e in report["errors"]}, (code, report)


async def test_import_bad_requests(api: Api) -> None:
    admin = await api.login("admin")
    before = await _counts(api)
    status, body = await admin.post("/api/imports/dry-run", {"users": "x"})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    status, body = await _post(admin, "/api/imports", other=b"x")
    assert status == 400 and body["error"]["code"] == "invalid_multipart"
    status, body = await admin.request(
        "POST", "/api/imports", data=b"--zz\r\nbroken",
        headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert status == 400, body
    status, body = await _post(admin, "/api/imports",
                               users=b"username\n" + b"a" * (17 * 1024 * 1024))
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    for user in ("coordinator", "township"):
        client = await api.login(user)
        status, body = await _post(client, "/api/imports", users=csv_bytes(USERS))
        assert status == 403, body
    assert await _counts(api) == before


async def test_users_are_checked_by_the_accounts_rules(api: Api) -> None:
    """The import applies the accounts service's rules (as POST /api/users does): usernames
    are stored in lower case and compared so, '@' is not a username character, names and
    titles have the accounts' lengths."""
    admin = await api.login("admin")
    users = [["username", "display_name", "role", "institution", "title"],
             ["Mixed.Case", "大小写", "township_doctor", SHALANG, ""],            # row 2: fine
             ["TOWNSHIP", "重名", "township_doctor", SHALANG, ""],                # 3: exists
             ["mixed.case", "再次", "township_doctor", SHALANG, ""],              # 4: duplicate
             ["li@shalang", "邮箱", "township_doctor", SHALANG, ""],              # 5
             ["long_name", "名" * 121, "township_doctor", SHALANG, "职" * 65]]    # 6: 2 problems
    status, report = await _post(admin, "/api/imports/dry-run", users=csv_bytes(users))
    assert status == 200, report
    got = [(e["row"], e["column"], e["code"]) for e in report["errors"]]
    assert got == [(3, "username", "exists"), (4, "username", "duplicate"),
                   (5, "username", "invalid_username"), (6, "display_name", "invalid_display_name"),
                   (6, "title", "invalid_title")], got
    status, result = await _post(admin, "/api/imports", users=csv_bytes(users[:2]))
    assert status == 201, result
    async with api.server.app[keys.DATABASE].read() as session:
        made = await session.scalar(select(User).where(User.display_name == "大小写"))
    assert made is not None and made.username == "mixed.case"
