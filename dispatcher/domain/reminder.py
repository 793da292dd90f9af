"""The daily e-mail reminder of the checklist: its settings and the message a lead unit gets.

``[checklist]`` of the deployment settings: ``remind_at`` ("07:30", the plan's time zone; empty:
no reminder) and ``units``, a lead unit's name (as the plan writes it) -> its e-mail address.
Once a day, each unit of ``units`` that leads items due that day (and not yet done) gets one
message listing them (:func:`message`). Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from dispatcher.domain.checklist import Checklist, Item

#: Vietnamese weekday names, Monday first.
WEEKDAYS_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")


class ReminderSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[checklist]``: when the daily reminder goes, and to which lead unit's address."""

    remind_at: str = ""  # "HH:MM" in the plan's time zone; "": no reminder
    units: dict[str, str] = {}  # lead unit (the plan's words) -> e-mail address

    @property
    def enabled(self) -> bool:
        return bool(self.remind_at)

    def time(self) -> dt.time:
        """``remind_at`` as a time (the settings were checked when loaded)."""
        hours, _, minutes = self.remind_at.partition(":")
        return dt.time(int(hours), int(minutes))


class Reminded(msgspec.Struct, frozen=True):
    """A unit's reminder of a day, once decided: sent, or refused for good by the mail server
    (``reason``); kept by date with the checklist's marks, so that no process sends it again."""

    unit: str
    at: dt.datetime
    sent: bool = True
    reason: str = ""


def parse_time(text: str) -> dt.time | None:
    """``HH:MM`` (24-hour) as a time; None when it is not one."""
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(hours) <= 2
            and len(minutes) == 2):
        return None
    if int(hours) > 23 or int(minutes) > 59:
        return None
    return dt.time(int(hours), int(minutes))


def day_text(day: dt.date) -> str:
    """"Thứ Hai 26/07/2021"."""
    return f"{WEEKDAYS_VI[day.weekday()]} {day:%d/%m/%Y}"


def message(checklist: Checklist, unit: str) -> tuple[str, str] | None:
    """The subject and text of ``unit``'s reminder: the items it leads that are due on the day
    and not done; None when there are none."""
    items = checklist.unit_items(unit)
    if not items:
        return None
    count = f"{len(items)} việc"
    subject = (f"Việc cần làm {day_text(checklist.date)} — {checklist.level_name} "
               f"(cấp {checklist.level}): {count}")
    lines = [f"Kính gửi {unit},", "",
             f"Theo kịch bản truyền thông phòng, chống dịch đang áp dụng ({checklist.level_name}), "
             f"hôm nay {day_text(checklist.date)} đơn vị chủ trì {count}:", ""]
    for number, item in enumerate(items, 1):
        lines.extend(_item(number, item))
    lines += ["Làm xong việc nào, đơn vị đánh dấu đã xong kèm ghi chú trên trang \"Việc cần làm\" "
              "của bảng điều khiển Loa, hoặc bằng lệnh:",
              "  loa checklist done MÃ_VIỆC --note \"...\"", "",
              "Thư gửi tự động, mỗi ngày một lần; xin không trả lời thư này."]
    return subject, "\n".join(lines) + "\n"


def _item(number: int, item: Item) -> list[str]:
    lines = [f"{number}. {item.field}: {item.what}", f"   Số lượng: {item.quantity}"]
    if item.coordinating:
        lines.append(f"   Phối hợp: {', '.join(item.coordinating)}")
    lines += [f"   Mã việc: {item.id}", ""]
    return lines
