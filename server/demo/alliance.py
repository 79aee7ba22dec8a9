"""The demo alliance's institutions, departments (with their heads), people, availability and
patients, as reported in the press (shared/design/demo-alliance.md); the people are invented."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import AvailabilityException, AvailabilityRule, Patient
from yilian.server.clinic.scheduling import extend_horizon
from yilian.server.core.crypto import encrypt, mask_national_id
from yilian.server.core.db import utcnow
from yilian.server.core.models import Alliance, AllianceMember, Department, Institution, User

# key: (name, local name, level, parent key, departments [(name, specialty)])
INSTITUTIONS: list[tuple[str, str, str, str, str | None, list[tuple[str, str | None]]]] = [
    ("gdph", "Guangdong Provincial People's Hospital", "广东省人民医院", "province", None,
     [("Cardiology", "cardiology"), ("Neurosurgery", "neurosurgery"),
      ("Orthopaedics", "orthopaedics"), ("Radiology", "radiology"), ("Pathology", "pathology")]),
    ("maoming", "Maoming People's Hospital", "茂名市人民医院", "city", None,
     [("Radiology", "radiology"), ("Pathology", "pathology"), ("Neurology", "neurology")]),
    ("dianbai", "Dianbai District People's Hospital", "广东省人民医院粤西医院 / 电白区人民医院",
     "county", "gdph", [("Internal Medicine", "internal_medicine"), ("Radiology", "radiology"),
                        ("Emergency", "emergency"), ("Cardiology", "cardiology"),
                        ("Neurology", "neurology")]),
    ("shalang", "Shalang Town Central Health Centre", "沙琅镇中心卫生院", "township", None,
     [("General Practice", "general_practice")]),
    ("shangtang", "Shangtang Village Clinic", "尚塘村卫生站", "village", None, []),
    ("guilin", "Guilin People's Hospital", "桂林市人民医院", "city", None,
     [("Neurosurgery", "neurosurgery"), ("Radiology", "radiology"), ("Cardiology", "cardiology")]),
    ("pingle", "Pingle County People's Hospital", "平乐县人民医院", "county", "guilin",
     [("Internal Medicine", "internal_medicine")]),
    ("xingan", "Xing'an County People's Hospital", "兴安县人民医院", "county", "guilin",
     [("Internal Medicine", "internal_medicine")]),
    ("yangshuo", "Yangshuo County People's Hospital", "阳朔县人民医院", "county", "guilin",
     [("Neurosurgery", "neurosurgery")]),
    ("baisha", "Baisha Town Health Centre, Yangshuo", "阳朔县白沙镇卫生院", "township", None,
     [("General Practice", "general_practice")]),
]

ALLIANCES = [
    ("Guangdong Five-Level Medical Alliance (省—市—区—镇—村)", "tight", None, "gdph",
     ["gdph", "maoming", "dianbai", "shalang", "shangtang"]),
    ("Guilin People's Hospital Medical Alliance", "tight", None, "guilin",
     ["guilin", "pingle", "xingan", "yangshuo", "baisha"]),
]

# username, display name, role, institution key, department specialty, specialties, title
USERS: list[tuple[str, str, str, str, str | None, list[str], str | None]] = [
    ("village", "Dr. Chen Liping (陈丽萍)", "village_doctor", "shangtang", None, [],
     "Village Doctor"),
    ("township", "Dr. Huang Zhiqiang (黄志强)", "township_doctor", "shalang", "general_practice",
     ["general_practice"], "Attending Physician"),
    ("county", "Dr. Lin Weiming (林伟明)", "specialist", "dianbai", "cardiology",
     ["internal_medicine", "cardiology"], "Associate Chief Physician"),
    ("county_radiology", "Dr. Liang Xiaoyan (梁晓燕)", "specialist", "dianbai", "radiology",
     ["radiology"], "Attending Radiologist"),
    ("expert", "Prof. Zhou Jianhua (周建华)", "specialist", "gdph", "cardiology", ["cardiology"],
     "Chief Physician"),
    ("gdph_neurosurgery", "Prof. He Guodong (何国栋)", "specialist", "gdph", "neurosurgery",
     ["neurosurgery"], "Chief Physician"),
    ("gdph_orthopaedics", "Dr. Xu Ming (徐明)", "specialist", "gdph", "orthopaedics",
     ["orthopaedics"], "Associate Chief Physician"),
    ("gdph_radiology", "Prof. Luo Hui (罗慧)", "specialist", "gdph", "radiology", ["radiology"],
     "Chief Radiologist"),
    ("gdph_pathology", "Prof. Tan Yun (谭云)", "specialist", "gdph", "pathology", ["pathology"],
     "Chief Pathologist"),
    ("maoming_radiology", "Dr. Wu Jing (吴静)", "specialist", "maoming", "radiology",
     ["radiology"], "Associate Chief Radiologist"),
    ("maoming_neurology", "Dr. Zheng Hao (郑浩)", "specialist", "maoming", "neurology",
     ["neurology"], "Chief Physician"),
    ("coordinator", "Ms. Feng Yue (冯悦)", "coordinator", "gdph", None, [],
     "Alliance Coordinator"),
    ("admin", "System Administrator", "admin", "gdph", None, [], None),
    ("guilin_doctor", "Dr. Mo Lihua (莫丽华)", "township_doctor", "baisha", "general_practice",
     ["general_practice"], "Attending Physician"),
    ("guilin_neurosurgery", "Prof. Qin Bo (覃波)", "specialist", "guilin", "neurosurgery",
     ["neurosurgery"], "Chief Physician"),
    ("guilin_radiology", "Dr. Lu Fang (陆芳)", "specialist", "guilin", "radiology", ["radiology"],
     "Attending Radiologist"),
    ("yangshuo_neurosurgery", "Dr. Wei Tao (韦涛)", "specialist", "yangshuo", "neurosurgery",
     ["neurosurgery"], "Attending Physician"),
    ("guilin_coordinator", "Mr. Tang Jun (唐军)", "coordinator", "guilin", None, [],
     "Alliance Coordinator"),
    # The receiving departments' on-call teams (rosters in demo/oncall.py).
    # internists who take the cardiology department's on-call shifts (county hospitals train
    # and roster them through 大内科); ``county`` heads the department
    ("county_cardiology_ye", "Dr. Ye Xiaoling (叶晓玲)", "specialist", "dianbai", "cardiology",
     ["internal_medicine"], "Attending Physician"),
    ("county_cardiology_zhong", "Dr. Zhong Wenbin (钟文斌)", "specialist", "dianbai",
     "cardiology", ["internal_medicine"], "Resident Physician"),
    ("county_neurology", "Dr. Pan Jianguo (潘建国)", "specialist", "dianbai", "neurology",
     ["neurology"], "Chief Physician"),
    ("county_neurology_xie", "Dr. Xie Yufang (谢玉芳)", "specialist", "dianbai", "neurology",
     ["neurology"], "Attending Physician"),
    ("county_neurology_guo", "Dr. Guo Peng (郭鹏)", "specialist", "dianbai", "neurology",
     ["neurology"], "Resident Physician"),
    ("county_emergency", "Dr. Cai Zhenhua (蔡振华)", "specialist", "dianbai", "emergency",
     ["emergency"], "Chief Physician"),
    ("county_emergency_rao", "Dr. Rao Min (饶敏)", "specialist", "dianbai", "emergency",
     ["emergency"], "Attending Physician"),
    ("county_emergency_deng", "Dr. Deng Kai (邓凯)", "specialist", "dianbai", "emergency",
     ["emergency"], "Resident Physician"),
    ("maoming_neurology_ke", "Dr. Ke Lina (柯丽娜)", "specialist", "maoming", "neurology",
     ["neurology"], "Attending Physician"),
    ("maoming_neurology_yang", "Dr. Yang Fan (杨帆)", "specialist", "maoming", "neurology",
     ["neurology"], "Resident Physician"),
    ("yangshuo_neurosurgery_head", "Dr. Liao Zhiyong (廖志勇)", "specialist", "yangshuo",
     "neurosurgery", ["neurosurgery"], "Chief Physician"),
    ("yangshuo_neurosurgery_ou", "Dr. Ou Jie (欧杰)", "specialist", "yangshuo", "neurosurgery",
     ["neurosurgery"], "Resident Physician"),
    ("guilin_neurosurgery_nong", "Dr. Nong Haiyan (农海燕)", "specialist", "guilin",
     "neurosurgery", ["neurosurgery"], "Attending Physician"),
    ("guilin_neurosurgery_liu", "Dr. Liu Chang (刘畅)", "specialist", "guilin", "neurosurgery",
     ["neurosurgery"], "Resident Physician"),
]

#: (institution key, department specialty) -> its head: who a green-channel alert escalates to.
HEADS = {
    ("gdph", "cardiology"): "expert", ("gdph", "neurosurgery"): "gdph_neurosurgery",
    ("gdph", "orthopaedics"): "gdph_orthopaedics", ("gdph", "radiology"): "gdph_radiology",
    ("gdph", "pathology"): "gdph_pathology", ("maoming", "radiology"): "maoming_radiology",
    ("maoming", "neurology"): "maoming_neurology", ("dianbai", "radiology"): "county_radiology",
    ("dianbai", "cardiology"): "county", ("dianbai", "neurology"): "county_neurology",
    ("dianbai", "emergency"): "county_emergency", ("shalang", "general_practice"): "township",
    ("guilin", "neurosurgery"): "guilin_neurosurgery", ("guilin", "radiology"): "guilin_radiology",
    ("yangshuo", "neurosurgery"): "yangshuo_neurosurgery_head",
    ("baisha", "general_practice"): "guilin_doctor",
}

# key, institution, name, sex, birth date, national id
PATIENTS = [
    ("li_guihua", "shangtang", "Li Guihua (李桂花)", "female", "1956-03-14", "440904195603140025"),
    ("chen_dafu", "shangtang", "Chen Dafu (陈大福)", "male", "1949-11-02", "440904194911020031"),
    ("wang_xiumei", "shalang", "Wang Xiumei (王秀梅)", "female", "1968-07-21",
     "440904196807210047"),
    ("liang_jinlong", "shalang", "Liang Jinlong (梁金龙)", "male", "1972-01-30",
     "44090419720130005X"),
    ("mo_caixia", "baisha", "Mo Caixia (莫彩霞)", "female", "1961-05-09", "450321196105090027"),
    ("zhong_jinfeng", "shangtang", "Zhong Jinfeng (钟金凤)", "female", "1955-11-08",
     "440904195511080022"),
    ("zhang_dehai", "shalang", "Zhang Dehai (张德海)", "male", "1963-04-17", "440904196304170011"),
    ("wu_yuzhen", "shalang", "Wu Yuzhen (吴玉珍)", "female", "1951-09-23", "440904195109230045"),
    ("huang_guiying", "shalang", "Huang Guiying (黄桂英)", "female", "1947-06-05",
     "440904194706050064"),
    ("xu_dehua", "dianbai", "Xu Dehua (许德华)", "male", "1958-02-12", "440981195802120031"),
    ("tang_xiulan", "baisha", "Tang Xiulan (唐秀兰)", "female", "1959-08-18",
     "450321195908180043"),
]
_CREATORS = {"shangtang": "village", "shalang": "township", "baisha": "guilin_doctor",
             "dianbai": "county"}

WEEKLY = [(d, "09:00", "12:00") for d in range(5)] + [(d, "14:30", "17:00") for d in range(5)]


def department(inst: Institution, specialty: str) -> Department:
    """The institution's department of that specialty."""
    return next(d for d in inst.departments if d.specialty == specialty)


async def institutions(session: AsyncSession) -> dict[str, Institution]:
    """The institutions with their departments, parents first."""
    out: dict[str, Institution] = {}
    for key, name, local, level, parent, depts in INSTITUTIONS:
        i = Institution(name=name, local_name=local, level=level,
                        parent_id=out[parent].id if parent else None)
        i.departments = [Department(name=d, specialty=s) for d, s in depts]
        session.add(i)
        await session.flush()
        out[key] = i
    return out


async def alliances(session: AsyncSession, inst: dict[str, Institution]) -> None:
    """The Guangdong five-level alliance and the Guilin one."""
    for name, kind, specialty, lead, members in ALLIANCES:
        a = Alliance(name=name, kind=kind, specialty=specialty,
                     lead_institution_id=inst[lead].id)
        a.members = [AllianceMember(institution_id=inst[m].id) for m in members]
        session.add(a)
    await session.flush()


async def users(session: AsyncSession, inst: dict[str, Institution], password_hash: str
                ) -> dict[str, User]:
    """Every demo account, then the department heads."""
    out: dict[str, User] = {}
    for username, display, role, ikey, dept_specialty, specialties, title in USERS:
        institution = inst[ikey]
        dept = next((d for d in institution.departments if d.specialty == dept_specialty), None)
        u = User(username=username, display_name=display, password_hash=password_hash, role=role,
                 institution_id=institution.id, department_id=dept.id if dept else None,
                 specialties=specialties, title=title)
        session.add(u)
        out[username] = u
    await session.flush()
    for (ikey, specialty), username in HEADS.items():
        department(inst[ikey], specialty).head_id = out[username].id
    await session.flush()
    return out


async def availability(session: AsyncSession, people: dict[str, User],
                       inst: dict[str, Institution], horizon_days: int) -> None:
    """Every specialist's weekly consultation hours, a rotation and a leave."""
    now = utcnow()
    for u in people.values():
        if u.role != "specialist":
            continue
        session.add_all(AvailabilityRule(expert_id=u.id, weekday=d, start_time=s, end_time=e,
                                         slot_minutes=30, timezone="Asia/Shanghai")
                        for d, s, e in WEEKLY)
    # The province hospital's placed specialists sit at Dianbai District one day a week (坐诊).
    for username in ("gdph_neurosurgery", "gdph_orthopaedics"):
        day = (now + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
        session.add(AvailabilityException(
            expert_id=people[username].id, kind="onsite", start=day,
            end=day + timedelta(days=1), institution_id=inst["dianbai"].id,
            note="On-site rotation at Dianbai District"))
    session.add(AvailabilityException(
        expert_id=people["expert"].id, kind="leave", start=now + timedelta(days=10),
        end=now + timedelta(days=12), note="Academic conference"))
    await session.flush()
    for u in people.values():
        if u.role == "specialist":
            await extend_horizon(session, u.id, horizon_days)


def patients(session: AsyncSession, inst: dict[str, Institution], people: dict[str, User],
             secret: str) -> dict[str, Patient]:
    """The demo patients, each registered by a doctor of their institution."""
    out: dict[str, Patient] = {}
    for key, ikey, name, sex, born, nid in PATIENTS:
        p = Patient(institution_id=inst[ikey].id, name=name, sex=sex,
                    birth_date=date.fromisoformat(born),
                    national_id_encrypted=encrypt(secret, nid),
                    national_id_masked=mask_national_id(nid), phone="138 0000 0000",
                    created_by_id=people[_CREATORS[ikey]].id)
        session.add(p)
        out[key] = p
    return out
