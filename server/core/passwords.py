"""The password policy: what a user may choose as a password, each refusal with its own code.

A password is at least ``password_min_length`` characters (10 by default), is not the
username (nor the username spelled backwards, nor the username with digits or punctuation
around it), is not one of the passwords every guessing list starts with, and is not the one
the user had before. Nothing else is demanded: long passphrases in any script are welcome
(NIST SP 800-63B, 5.1.1.2).
"""

from __future__ import annotations

import re
import unicodedata

from yilian.server.core.errors import ValidationFailed

#: Longest password accepted (argon2 hashes anything, but a 1 MB password is an attack).
MAX_PASSWORD_CHARS = 256

# The most common passwords of leaked lists (Chinese sites' lists included) at ten characters
# or more, and the demo's shared password; compared after lower-casing.
COMMON_PASSWORDS = frozenset("""
1234567890 0123456789 0987654321 9876543210 1111111111 0000000000 1234512345 1122334455
1qaz2wsx3edc 1q2w3e4r5t 1q2w3e4r5t6y 1qazxsw23edc 1qaz@wsx3edc qazwsxedcrfv qwertyuiop
qwertyuiop[] asdfghjkl; zxcvbnm123 qwerty123456 qwer123456 qwe1234567 asdf123456
a123456789 a1234567890 abc1234567 abcd123456 abcdefghij aa12345678 aa123456789 password12
password123 password1234 passw0rd123 p@ssw0rd123 p@ssword123 iloveyou12 iloveyou123
woaini1314 woaini5201314 5201314520 5201314woaini 1314520520 147258369a 1472583690
123456789a 123456789q 123456789z 12345678910 123123123a 123qweasdzxc qweasdzxc123
admin12345 admin123456 administrator root123456 welcome123 letmein123 changeme123
yilian-demo yilian123456 yilian12345 huawei12345 huawei123456 zhang123456 wang123456
li123456789 abcd1234567 abc123456789 qq123456789 aini1314520 wodemima123 mima123456
""".split())

_AROUND = re.compile(r"^[\W\d_]*(.*?)[\W\d_]*$", re.UNICODE)


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def check_password(password: str, *, username: str, min_length: int,
                   previous_hash: str | None = None, field: str = "password") -> None:
    """Raise 422 with the rule's code unless ``password`` may be chosen: ``password_too_short``,
    ``password_too_long``, ``password_is_username``, ``password_too_common``,
    ``password_reused`` (the same as the current one, checked against ``previous_hash``).
    Spends an argon2 verification when ``previous_hash`` is given: call it off the loop."""
    # Imported here: the auth module imports this one for the login path.
    from yilian.server.core.auth import verify_password

    length = len(password)
    if length < min_length:
        raise _refused(field, "password_too_short", f"a password has at least {min_length} characters",
                       {"min_length": min_length})
    if length > MAX_PASSWORD_CHARS:
        raise _refused(field, "password_too_long", f"a password has at most {MAX_PASSWORD_CHARS} "
                       "characters", {"max_length": MAX_PASSWORD_CHARS})
    folded, name = _folded(password), _folded(username)
    core = _AROUND.match(folded)
    stripped = core.group(1) if core else folded
    if name and (folded in (name, name[::-1]) or stripped in (name, name[::-1])):
        raise _refused(field, "password_is_username", "the password may not be the username")
    if folded in COMMON_PASSWORDS or len(set(folded)) <= 2:
        raise _refused(field, "password_too_common", "this password is among the first any attacker "
                       "tries; choose another")
    if previous_hash is not None and verify_password(previous_hash, password):
        raise _refused(field, "password_reused", "choose a password other than the current one")


def _refused(field: str, code: str, message: str, extra: dict[str, object] | None = None
             ) -> ValidationFailed:
    return ValidationFailed(message, code=code, details={
        "errors": [{"loc": ["body", field], "msg": message, "type": code}], **(extra or {})})
