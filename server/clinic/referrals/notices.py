"""The words of the referral notifications, in every language of the web client.

Each kind has a title and a body per locale, with ``{fields}`` filled from the referral: the
institutions (their own Chinese names in Chinese), the green channel and the referral's
number. The patient's name and the clinical text (reason, summary) are left out: an alert may
show on a locked screen, and the referral page shows them with an audit entry.
"""

from __future__ import annotations

from collections.abc import Mapping

from yilian.server.core.notify import Texts

CHANNELS: dict[str, dict[str, str]] = {
    "zh-CN": {"stroke": "卒中", "chest_pain": "胸痛", "trauma": "创伤",
              "maternal": "危重孕产妇", "neonatal": "危重新生儿"},
    "en": {"stroke": "stroke", "chest_pain": "chest pain", "trauma": "trauma",
           "maternal": "critical maternal", "neonatal": "critical neonatal"},
}

DIRECTIONS: dict[str, dict[str, str]] = {
    "zh-CN": {"up": "上转", "down": "下转"},
    "en": {"up": "upward", "down": "downward"},
}

# kind -> locale -> (title, body)
NOTICES: dict[str, dict[str, tuple[str, str]]] = {
    "referral.requested": {
        "zh-CN": ("新的{direction}转诊申请", "{from_name}的转诊 #{id}，请查看并答复"),
        "en": ("New {direction} referral", "From {from_name}: referral #{id}, open it to "
                                           "answer"),
    },
    "referral.green_channel": {
        "zh-CN": ("绿色通道：{channel}患者转诊", "{from_name}发起{channel}绿色通道转诊 #{id}，请立即处理"),
        "en": ("Green channel: {channel} referral",
               "{from_name} raised {channel} green-channel referral #{id}; answer now"),
    },
    "referral.accepted": {
        "zh-CN": ("转诊已接收", "{to_name}已接收转诊"),
        "en": ("Referral accepted", "{to_name} accepted the referral"),
    },
    "referral.rejected": {
        "zh-CN": ("转诊被拒绝", "{to_name}拒绝了转诊 #{id}，原因见转诊详情"),
        "en": ("Referral rejected", "{to_name} rejected referral #{id}; the reason is on the "
                                    "referral"),
    },
    "referral.departed": {
        "zh-CN": ("患者已出发", "{from_name}转诊的患者已在途"),
        "en": ("Patient on the way", "The patient referred by {from_name} is on the way"),
    },
    "referral.arrived": {
        "zh-CN": ("患者已到达", "患者已到达{to_name}"),
        "en": ("Patient arrived", "The patient has arrived at {to_name}"),
    },
    "referral.cancelled": {
        "zh-CN": ("转诊已取消", "{from_name}取消了转诊 #{id}"),
        "en": ("Referral cancelled", "{from_name} cancelled referral #{id}"),
    },
    "referral.expired": {
        "zh-CN": ("转诊已过期", "{to_name}未在时限内接收转诊"),
        "en": ("Referral expired", "{to_name} did not answer the referral in time"),
    },
    "referral.escalated": {
        "zh-CN": ("绿色通道转诊无人接收", "{from_name}的{channel}绿色通道转诊已等待{minutes}分钟，仍无人接收"),
        "en": ("Green-channel referral unanswered",
               "The {channel} green-channel referral from {from_name} has waited {minutes} "
               "minutes without being accepted"),
    },
    "follow_up.created": {
        "zh-CN": ("新的随访", "{from_name}下转的患者需在{due}前随访"),
        "en": ("New follow-up", "A patient referred down by {from_name} is due for follow-up "
                                "by {due}"),
    },
}


def _names(fields: Mapping[str, object], locale: str) -> dict[str, object]:
    out = dict(fields)
    for key in ("from_name", "to_name"):
        value = fields.get(key)
        if isinstance(value, tuple):  # (English name, own Chinese name or None)
            out[key] = value[1] if locale == "zh-CN" and value[1] else value[0]
    channel = fields.get("channel")
    if isinstance(channel, str):
        out["channel"] = CHANNELS[locale].get(channel, channel)
    direction = fields.get("direction")
    if isinstance(direction, str):
        out["direction"] = DIRECTIONS[locale].get(direction, direction)
    return out


def texts(kind: str, **fields: object) -> Texts:
    """The title and body of ``kind`` in every language, filled from ``fields``
    (``from_name``/``to_name`` as (name, local name) pairs; ``channel`` and ``direction`` as
    their codes)."""
    out: dict[str, tuple[str, str]] = {}
    for locale, (title, body) in NOTICES[kind].items():
        values = _names(fields, locale)
        out[locale] = (title.format_map(values), body.format_map(values))
    return out
