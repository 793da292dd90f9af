"""What the plan and level commands say to operators: Vietnamese (the default) and English.

The plan's own words (level names, triggers, the source's quantities, units, messages) are
printed as the plan file writes them; every other word of ``loa plan`` and ``loa level`` comes
from here. ``--json`` output is for programs and is never translated.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dispatcher.domain.activity import Cadence as ActivityCadence
from dispatcher.domain.model import Channel
from dispatcher.domain.plan import Cadence

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Texts:
    """One language. Templates are ``str.format`` patterns; their fields are named."""

    code: str
    thousands: str  # digit grouping of whole numbers
    weekdays: tuple[str, ...]  # Monday first, as a cadence names them
    and_: str  # between the last two items of a list
    date_weekdays: tuple[str, ...]  # Monday first, as a date starts
    date: str  # {weekday} {day} {month} {month_name} {year} {time}
    case: tuple[str, str]  # {n} confirmed cases: one, more
    part: tuple[str, str]  # {n} SMS parts: one, more
    times: tuple[str, str, str]  # {n} sends: one, two, more
    channels: dict[Channel, str]
    # loa plan show
    source: str  # {source}
    hours: str  # {tz} {offset} {start} {end} {minutes}
    policy: str  # {hotline} {diacritics} {parts}
    diacritics: dict[str, str]  # strip, keep
    level_title: str  # {level} {name} {cases}
    cases_range: str  # {low} {high}: a count of cases between
    cases_above: str  # {cases} (the words of ``case``): more than
    in_force_mark: str  # {title}
    refused_text: str  # {level} {channel} {version} {reason}: an approved text not sent
    columns: tuple[str, str, str, str, str]
    per_day: str  # {n}: sends a day (the words of ``times``)
    per_week: str  # {n}: sends a week
    once_every: str  # {days}: one send every
    per_days: str  # {n} {days}: sends every
    daily_at: str  # {times}
    weekly_at: str  # {days} {time}: the same time on each day listed
    weekly: str  # {slots}: "Thứ Hai 09:30, Thứ Năm 14:00"
    every_at: str  # {days} {times}
    every: str  # {days} {slots}
    day_at: str  # {day} {time}: day of the period, counted from 1
    source_says: str  # {quantity}
    messages: str
    sms_info: str  # {encoding} {parts} (the words of ``part``)
    stripped: str
    chars_info: str  # {n}
    with_units: str  # {units}
    targets: str  # {names}: an outlet channel's targets
    no_targets: str  # an outlet channel without any
    activities: str
    activity: str  # {id} {field} {what} {quantity} {cadence}
    lead: str  # {lead}
    due: dict[str, str]  # an activity's cadence: daily, weekly ({n} {days}), every ({n}), as needed
    carried: str  # an activity carried on from the level below
    sent_by: str  # {channel}: an activity that a channel row of the level sends
    until_channel: str  # {channel}: an activity sent once the level has the channel's row
    # the level in force
    in_force: str  # {level} {name} {since}
    set_by: str  # {user}
    confirmed_by: str  # {user}: the second person of a level raise
    reason: str  # {reason}
    no_case: str  # the name of level 0
    not_in_plan: str  # the name of a level the plan does not have
    level_zero: str  # what level 0 means
    never_set: str
    cases_level: str  # {cases} {level} {name} {trigger}: loa plan level
    cases_level_zero: str  # {cases}
    history: str
    history_columns: tuple[str, str, str, str, str]
    history_level: str  # {level} {name}
    # a level's opening messages
    opening_rule: str  # {hours} {urgent}
    opening_urgent: str  # {levels}: the urgent levels
    openings: str  # {level}
    opening_sent: str  # {channel} {wave} {at} {urgent} {state} {sent} {total}
    opening_urgent_mark: str
    opening_damped: str  # {channel} {level} {last} {hours}
    opening_missed: str  # {channel} {minutes}
    opening_pending: str  # {channel}
    wave_states: dict[str, str]

    def count(self, n: int) -> str:
        """A whole number with this language's digit grouping: "1,000,000", "1.000.000"."""
        return f"{n:,}".replace(",", self.thousands)

    def cases(self, n: int) -> str:
        """``n`` confirmed cases: "1 case", "42 cases"; "1 ca", "42 ca"."""
        return self.case[n != 1].format(n=self.count(n))

    def parts(self, n: int) -> str:
        """``n`` SMS parts: "1 part", "2 parts"; "1 tin SMS", "2 tin SMS"."""
        return self.part[n != 1].format(n=self.count(n))

    def sends(self, n: int) -> str:
        """``n`` sends, as a frequency counts them: "once", "twice", "5 times"; "1", "5"."""
        return self.times[min(n, 3) - 1].format(n=self.count(n))

    def when(self, at: dt.datetime, tz: ZoneInfo) -> str:
        """``at`` as a local date and time in ``tz``: "Thứ Ba 08/12/2026 09:30"."""
        local = at.astimezone(tz)
        return self.date.format(weekday=self.date_weekdays[local.weekday()],
                                day=f"{local:%d}", month=f"{local:%m}",
                                month_name=MONTHS_EN[local.month - 1], year=local.year,
                                time=f"{local:%H:%M}")

    def frequency(self, cadence: Cadence) -> str:
        """How often: "3 ngày/lần", "2 lần/tuần"; "once every 3 days", "twice a week"."""
        n, days = len(cadence.slots), cadence.period_days
        if days == 1:
            return self.per_day.format(n=self.sends(n))
        if days == 7:
            return self.per_week.format(n=self.sends(n))
        if n == 1:
            return self.once_every.format(days=days)
        return self.per_days.format(n=self.sends(n), days=days)

    def schedule(self, cadence: Cadence) -> str:
        """When, in local time: "hằng ngày lúc 08:00, 17:00", "mỗi 3 ngày lúc 09:30",
        "Thứ Hai và Thứ Năm hằng tuần lúc 09:30"; "daily at 08:00, 17:00" ..."""
        slots, days = cadence.slots, cadence.period_days
        times = ", ".join(f"{time:%H:%M}" for _, time in slots)
        if days == 7:
            if len({time for _, time in slots}) == 1:
                return self.weekly_at.format(days=self.join([self.weekdays[d] for d, _ in slots]),
                                             time=f"{slots[0][1]:%H:%M}")
            return self.weekly.format(slots=", ".join(f"{self.weekdays[d]} {time:%H:%M}"
                                                      for d, time in slots))
        if all(day == 0 for day, _ in slots):
            return (self.daily_at if days == 1 else self.every_at).format(days=days, times=times)
        return self.every.format(days=days, slots=", ".join(
            self.day_at.format(day=day + 1, time=f"{time:%H:%M}") for day, time in slots))

    def due_text(self, cadence: ActivityCadence) -> str:
        """When an activity is due: "hằng ngày", "2 lần/tuần: Thứ Hai và Thứ Năm"."""
        return self.due[cadence.kind].format(
            n=len(cadence.weekdays) if cadence.kind == "weekly" else cadence.every,
            days=self.join([self.weekdays[d] for d in cadence.weekdays]))

    def join(self, items: list[str]) -> str:
        """"a, b and c"; "a, b và c"."""
        if len(items) < 2:
            return "".join(items)
        return ", ".join(items[:-1]) + self.and_ + items[-1]

    def stamp(self, at: dt.datetime, tz: ZoneInfo) -> str:
        """:meth:`when` with the UTC offset: "Thứ Ba 08/12/2026 09:30 (UTC+07:00)"."""
        return f"{self.when(at, tz)} (UTC{utc_offset(at, tz)})"


VI = Texts(
    code="vi", thousands=".",
    weekdays=("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"),
    and_=" và ",
    date_weekdays=("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"),
    date="{weekday} {day}/{month}/{year} {time}",
    case=("{n} ca", "{n} ca"), part=("{n} tin SMS", "{n} tin SMS"), times=("{n}", "{n}", "{n}"),
    channels={Channel.SMS: "SMS", Channel.ZALO: "Zalo", Channel.EMAIL: "Thư điện tử",
              Channel.APP: "Ứng dụng Smart Quảng Ninh", Channel.FACEBOOK: "Facebook",
              Channel.PORTAL: "Cổng thông tin", Channel.LOUDSPEAKER: "Loa thông minh",
              Channel.CELL_BROADCAST: "Tin nhắn quảng bá theo vùng (cell broadcast)"},
    source="Nguồn: {source}",
    hours="Múi giờ {tz} (UTC{offset}); giờ gửi {start}–{end}, tin khẩn gửi ngay; lần gửi bị "
          "lỡ được gửi bù trong {minutes} phút",
    policy="Đường dây nóng {hotline}; SMS {diacritics}; mỗi SMS tối đa {parts} tin",
    diacritics={"strip": "bỏ dấu tiếng Việt", "keep": "giữ dấu tiếng Việt"},
    level_title="Cấp {level} — {name}: {cases}",
    cases_range="từ {low} đến {high} ca", cases_above="trên {cases}",
    in_force_mark="{title} — đang áp dụng",
    refused_text="Cấp {level}, {channel}: nội dung đã duyệt {version} không còn hợp với kế "
                 "hoạch ({reason}); đang gửi nội dung trong tệp kế hoạch",
    columns=("Kênh", "Tần suất", "Lịch gửi", "Lần gửi tới", "Đơn vị chủ trì"),
    per_day="{n} lần/ngày", per_week="{n} lần/tuần", once_every="{days} ngày/lần",
    per_days="{n} lần/{days} ngày",
    daily_at="hằng ngày lúc {times}", weekly_at="{days} hằng tuần lúc {time}",
    weekly="hằng tuần: {slots}", every_at="mỗi {days} ngày lúc {times}",
    every="mỗi {days} ngày: {slots}", day_at="ngày thứ {day} lúc {time}",
    source_says="theo văn bản: {quantity}",
    messages="Nội dung tin, như khi gửi:",
    sms_info="{encoding}, {parts}", stripped=", bỏ dấu", chars_info="{n} ký tự",
    with_units="phối hợp: {units}",
    targets="đăng tới: {names}", no_targets="chưa cấu hình nơi đăng",
    activities="Việc do các đơn vị thực hiện (Loa không gửi; việc cần làm mỗi ngày: "
               "loa checklist):",
    activity="{id} {field}: {what} — {quantity} ({cadence}).", lead="Chủ trì: {lead}",
    due={"daily": "hằng ngày", "weekly": "{n} lần/tuần: {days}", "every": "{n} ngày/lần",
         "as needed": "khi cần"},
    carried=" Tiếp tục từ cấp dưới (bảng của cấp này không nêu).",
    sent_by=" Loa gửi qua kênh {channel}: không có trong việc cần làm.",
    until_channel=" Loa gửi qua kênh {channel} khi cấp độ có dòng kênh này.",
    in_force="Đang áp dụng: cấp {level} — {name}, từ {since}",
    set_by=", do {user} đặt", confirmed_by=", {user} xác nhận", reason="lý do: {reason}",
    no_case="không có ca bệnh", not_in_plan="không có trong kế hoạch",
    level_zero="Cấp 0 nghĩa là không có ca bệnh trên địa bàn tỉnh: kế hoạch không lên lịch gửi "
               "tin nào, các đợt gửi của cấp độ trước (kể cả đợt đang gửi) bị huỷ.",
    never_set="Chưa đặt cấp độ nào: cấp 0, không có ca bệnh; kế hoạch không lên lịch gửi tin nào.",
    cases_level="{cases}: cấp {level} ({name}: {trigger})",
    cases_level_zero="{cases}: cấp 0 (không có ca bệnh trên địa bàn tỉnh; kế hoạch không lên "
                     "lịch gửi tin nào)",
    history="Lịch sử cấp độ, mới nhất trước",
    history_columns=("Thời điểm", "Cấp độ", "Số ca", "Người đặt", "Lý do"),
    history_level="{level} — {name}",
    opening_rule="Khi chuyển cấp (tăng hoặc giảm), mỗi kênh của cấp mới gửi tin mở đầu ngay lần "
                 "quét tới, trong giờ gửi{urgent}; mỗi cấp mở đầu một kênh nhiều nhất 1 lần "
                 "trong {hours} giờ",
    opening_urgent="; cấp {levels}: gửi ngay, kể cả ngoài giờ",
    openings="Tin mở đầu cấp {level}:",
    opening_sent="{channel}: đợt {wave}, tạo lúc {at}{urgent} — {state}, đã gửi {sent}/{total}",
    opening_urgent_mark=" (khẩn)",
    opening_damped="{channel}: không gửi lại — cấp {level} đã mở đầu lúc {last}, chưa quá "
                   "{hours} giờ",
    opening_missed="{channel}: không gửi — cấp độ được đặt quá {minutes} phút trước khi Loa "
                   "thấy",
    opening_pending="{channel}: chưa gửi, sẽ gửi ở lần quét tới",
    wave_states={"created": "chờ giờ gửi", "fanning_out": "đang chia lô", "sending": "đang gửi",
                 "paused": "tạm dừng", "completed": "đã xong", "cancelled": "đã huỷ"},
)

EN = Texts(
    code="en", thousands=",",
    weekdays=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    and_=" and ",
    date_weekdays=("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    date="{weekday} {day} {month_name} {year} {time}",
    case=("{n} case", "{n} cases"), part=("{n} part", "{n} parts"),
    times=("once", "twice", "{n} times"),
    channels={Channel.SMS: "SMS", Channel.ZALO: "Zalo", Channel.EMAIL: "E-mail",
              Channel.APP: "Smart Quảng Ninh app", Channel.FACEBOOK: "Facebook",
              Channel.PORTAL: "Portal", Channel.LOUDSPEAKER: "Smart loudspeakers",
              Channel.CELL_BROADCAST: "Cell broadcast"},
    source="Source: {source}",
    hours="Time zone {tz} (UTC{offset}); sending hours {start}-{end}, urgent notices at once; "
          "missed slots caught up for {minutes} minutes",
    policy="Hotline {hotline}; SMS diacritics: {diacritics}; every SMS at most {parts} parts",
    diacritics={"strip": "strip", "keep": "keep"},
    level_title="Level {level} — {name}: {cases}",
    cases_range="{low} to {high} cases", cases_above="more than {cases}",
    in_force_mark="{title} — in force",
    refused_text="Level {level}, {channel}: the approved text {version} no longer fits the "
                 "plan ({reason}); the plan file's text is sent",
    columns=("Channel", "Frequency", "Schedule", "Next send", "Lead unit"),
    per_day="{n} a day", per_week="{n} a week", once_every="once every {days} days",
    per_days="{n} every {days} days",
    daily_at="daily at {times}", weekly_at="every {days} at {time}", weekly="weekly: {slots}",
    every_at="every {days} days at {times}", every="every {days} days: {slots}",
    day_at="day {day} at {time}",
    source_says="source: {quantity}",
    messages="Messages, as sent:",
    sms_info="{encoding}, {parts}", stripped=", diacritics stripped", chars_info="{n} characters",
    with_units="with {units}",
    targets="published to {names}", no_targets="no target configured",
    activities="Done by people, on the daily checklist (Loa does not send these; "
               "loa checklist):",
    activity="{id} {field}: {what} — {quantity} ({cadence}).", lead="Lead: {lead}",
    due={"daily": "daily", "weekly": "{n} a week: {days}", "every": "every {n} days",
         "as needed": "as needed"},
    carried=" Carried on from the level below (not in this level's table).",
    sent_by=" Loa sends it on the {channel} channel: not on the checklist.",
    until_channel=" Loa sends it on the {channel} channel once the level has its row.",
    in_force="In force: level {level} — {name}, since {since}",
    set_by=", set by {user}", confirmed_by=", confirmed by {user}", reason="reason: {reason}",
    no_case="no case", not_in_plan="not in the plan",
    level_zero="Level 0 means no case in the province: the plan schedules nothing, and the "
               "previous level's waves (those sending too) are cancelled.",
    never_set="No level has been set: level 0, no case; the plan schedules nothing.",
    cases_level="{cases}: level {level} ({name}: {trigger})",
    cases_level_zero="{cases}: level 0 (no case in the province; the plan schedules nothing)",
    history="Level history, newest first",
    history_columns=("When", "Level", "Cases", "Set by", "Reason"),
    history_level="{level} — {name}",
    opening_rule="When the level changes (up or down), each channel of the new level sends its "
                 "opening message on the next tick, inside the sending hours{urgent}; a level "
                 "opens a channel at most once in {hours} hours",
    opening_urgent="; level {levels}: at once, at any hour",
    openings="Opening messages of level {level}:",
    opening_sent="{channel}: wave {wave}, created {at}{urgent} — {state}, {sent}/{total} sent",
    opening_urgent_mark=" (urgent)",
    opening_damped="{channel}: not sent again — level {level} opened at {last}, less than "
                   "{hours} hours before",
    opening_missed="{channel}: not sent — the level was set more than {minutes} minutes "
                   "before Loa saw it",
    opening_pending="{channel}: not yet, on the next tick",
    wave_states={"created": "waiting for the sending hours", "fanning_out": "fanning out",
                 "sending": "sending", "paused": "paused", "completed": "completed",
                 "cancelled": "cancelled"},
)

LANGUAGES = {"vi": VI, "en": EN}


def add_option(parser: argparse.ArgumentParser) -> None:
    """``--lang vi|en`` on a command that prints for people."""
    parser.add_argument("--lang", choices=tuple(LANGUAGES), default="vi",
                        help="language of the output: vi (Vietnamese, the default) or en "
                             "(English); --json output is the same in both")


def texts(args: argparse.Namespace) -> Texts:
    """The language ``--lang`` chose."""
    return LANGUAGES[args.lang]


def utc_offset(at: dt.datetime, tz: ZoneInfo) -> str:
    """The offset from UTC of ``tz`` at ``at``: "+07:00"."""
    offset = at.astimezone(tz).strftime("%z")
    return f"{offset[:3]}:{offset[3:]}"
