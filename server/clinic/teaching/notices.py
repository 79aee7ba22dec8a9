"""The words of the teaching notifications, in every language of the web client.

``teaching.starting`` goes to the clinical users of the invited institutions when the presenter
goes live; ``teaching.reminder`` 15 minutes before the scheduled start. Times are written in
the alliance's display zone (Asia/Shanghai), as the web client shows them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from yilian.server.core.notify import Texts

KINDS: dict[str, dict[str, str]] = {
    "zh-CN": {"rounds": "远程查房", "lecture": "专题讲座", "surgery_demo": "手术示教",
              "training": "培训"},
    "en": {"rounds": "ward rounds", "lecture": "lecture", "surgery_demo": "surgery demonstration",
           "training": "training"},
}

# kind -> locale -> (title, body)
NOTICES: dict[str, dict[str, tuple[str, str]]] = {
    "teaching.starting": {
        "zh-CN": ("示教直播开始：{title}", "{presenter}的{kind}已开始直播，点击进入观看"),
        "en": ("Teaching broadcast is live: {title}",
               "{presenter}'s {kind} has started; open it to watch"),
    },
    "teaching.reminder": {
        "zh-CN": ("示教即将开始：{title}", "{presenter}的{kind}将于{time}开始"),
        "en": ("Teaching broadcast soon: {title}", "{presenter}'s {kind} starts at {time}"),
    },
}


def texts(kind: str, *, title: str, presenter: str, session_kind: str, start: datetime,
          zone: str = "Asia/Shanghai") -> Texts:
    """The notification ``kind``'s title and body in every locale, filled in."""
    time = start.astimezone(ZoneInfo(zone)).strftime("%H:%M")
    return {
        locale: (t.format(title=title), b.format(presenter=presenter, time=time,
                                                 kind=KINDS[locale][session_kind]))
        for locale, (t, b) in NOTICES[kind].items()
    }
