"""Initial passwords for imported users: random one-time codes, hashed on every core.

Hashing 5,000 passwords with the login's argon2id parameters (64 MiB, 3 passes) takes about
0.5 s each here: 40 minutes for one import, and still 20 on two cores. Those parameters are
there to slow the guessing of passwords people choose. An initial code is not chosen: 16
characters drawn by ``secrets`` from 31 unambiguous symbols (79 bits), valid until its first
use (the account must change it at first login). No amount of guessing finds 79 random bits, so
its argon2id hash can be cheap (1 MiB, 1 pass: about 2 ms); the password its owner then chooses
is hashed with the full parameters. The hashes are computed on a thread per core (argon2 releases
the interpreter lock), off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher

#: No 0/O, 1/I/L: the code is read off a printed sheet.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 16
_cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def new_code() -> str:
    """One random initial password (79 bits)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def _hash_all(codes: list[str]) -> list[str]:
    return [_cheap.hash(c) for c in codes]


async def hash_codes(codes: list[str], workers: int | None = None) -> list[str]:
    """The argon2id hashes of ``codes``, in order, computed on ``workers`` threads (one per
    core by default)."""
    if not codes:
        return []
    n = max(1, min(workers or os.cpu_count() or 1, 16))
    size = -(-len(codes) // n)
    chunks = [codes[i:i + size] for i in range(0, len(codes), size)]
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=len(chunks), thread_name_prefix="import-hash") as pool:
        parts = await asyncio.gather(*(loop.run_in_executor(pool, _hash_all, c)
                                       for c in chunks))
    return [h for part in parts for h in part]
