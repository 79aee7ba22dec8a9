"""``yilian admin create-user``: the first administrator of a new install (and any account an
operator must make without the web client), with the same rules as ``POST /api/users``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core import accounts, audit
from yilian.server.core.accounts import Directory, NewUser
from yilian.server.core.auth import hash_password
from yilian.server.core.db import Database
from yilian.server.core.models import Institution
from yilian.server.core.passwords import check_password
from yilian.server.core.settings import Settings


async def create_user_from_cli(settings: Settings, args: argparse.Namespace, password: str,
                               migrate: Callable[[Database], Awaitable[None]]) -> str:
    """Migrate the database (with ``migrate``: the schema is above the core), then create the
    account ``args`` describe (and, with ``--institution-level``, its institution if missing);
    returns the line to print. Raises ``ValueError`` or a ``YilianError`` (duplicate
    username, unknown institution, weak password...) and then changes nothing."""
    username = accounts.normalize_username(args.username)
    await asyncio.to_thread(check_password, password, username=username,
                            min_length=settings.auth.password_min_length)
    password_hash = await asyncio.to_thread(hash_password, password)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new install's
    db = Database(settings.resolved_database_url)
    try:
        await migrate(db)
        async with db.write() as session:
            institution = await _institution(session, args)
            directory = await Directory.load(session, None, [username])
            new = NewUser(username, args.display_name, args.role, institution.id,
                          list(args.specialty), args.title, args.department)
            user = await accounts.create_user(session, directory, None, new, password_hash,
                                              must_change_password=args.must_change_password)
        return (f"created {user.role} {user.username!r} (id {user.id}) at "
                f"{institution.name!r} (id {institution.id})")
    finally:
        await db.close()


async def _institution(session: AsyncSession, args: argparse.Namespace) -> Institution:
    ref = args.institution.strip()
    if ref.isascii() and ref.isdigit():
        found = await session.get(Institution, int(ref))
    else:
        found = (await session.execute(select(Institution).where(Institution.name == ref))
                 ).scalar_one_or_none()
    if found is not None:
        return found
    if args.institution_level is None or (ref.isascii() and ref.isdigit()):
        raise ValueError(f"there is no institution {ref!r}; to create it, give its name "
                         "with --institution-level (province, city, county, township, village)")
    institution = Institution(name=ref, level=args.institution_level)
    session.add(institution)
    await session.flush()
    audit.record(session, None, "create_institution", "institution", institution.id,
                 detail={"after": {"name": ref, "level": args.institution_level},
                         "via": "command line"})
    return institution
