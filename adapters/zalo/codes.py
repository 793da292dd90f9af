"""Zalo's published error codes (ZNS and OA), each with its meaning and what Loa does about it.

Sources: Zalo's ZNS send page (developers.zalo.me), Zalo Cloud's guide "handle error code"
(zalo.cloud/zns/guidelines/handle-error-code) and the public copies of the full ZNS and OA error
table that agree with each other (see docs/channels.md). The outcomes:

* ``retry``: transient, the message is tried again (using one of its attempts);
* ``fail``: this message can never go on Zalo (a malformed request is a bug: it fails loudly);
* ``fallback``: this recipient cannot be reached on Zalo; SMS may reach them;
* ``refresh``: renew the access token, send once more;
* ``quota``: the OA or template is over its limit: the route pauses until the reset;
* ``configuration`` / ``balance``: no message can go until an operator fixes the OA, the
  application or the template, or tops up the account: the route pauses, the audience stays
  queued, ``loa_zalo_route_paused{reason}`` is 1 and an error is logged;
* ``night``: the template may not go 22:00-06:00: urgent messages go by SMS at once, the others
  wait until 06:00.
"""

from __future__ import annotations

import enum

import msgspec


class Outcome(enum.Enum):
    """What the adapter does with a message after Zalo's answer."""

    SENT = "sent"
    RETRY = "retry"
    FAIL = "fail"
    FALLBACK = "fallback"
    REFRESH = "refresh"
    QUOTA = "quota"
    CONFIGURATION = "configuration"
    BALANCE = "balance"
    NIGHT = "night"


class Code(msgspec.Struct, frozen=True):
    """One of Zalo's codes: its meaning in Vietnamese (Zalo's words) and English."""

    vietnamese: str
    english: str
    outcome: Outcome


R, F, FB, T = Outcome.RETRY, Outcome.FAIL, Outcome.FALLBACK, Outcome.REFRESH
Q, C, B, N = Outcome.QUOTA, Outcome.CONFIGURATION, Outcome.BALANCE, Outcome.NIGHT

_TABLE: list[tuple[int, str, str, Outcome]] = [
    (0, "Thành công", "success", Outcome.SENT),
    # -- ZNS -----------------------------------------------------------------------------------
    (-100, "Lỗi không xác định, vui lòng thử lại sau", "unknown error, try again later", R),
    (-101, "Ứng dụng gửi ZNS không hợp lệ", "application invalid", C),
    (-102, "Ứng dụng gửi ZNS không tồn tại", "application does not exist", C),
    (-103, "Ứng dụng chưa được kích hoạt", "application not activated", C),
    (-104, "Secret key của ứng dụng không hợp lệ", "application secret key invalid", C),
    (-105, "Ứng dụng gửi ZNS chưa được liên kết với OA", "application not linked to an OA", C),
    (-106, "Phương thức không được hỗ trợ", "method not supported", F),
    (-107, "ID thông báo không hợp lệ", "message id invalid", F),
    (-108, "Số điện thoại không hợp lệ", "phone number invalid", F),
    (-109, "ID mẫu ZNS không hợp lệ", "template id invalid", C),
    (-110, "Phiên bản Zalo app không được hỗ trợ", "Zalo app version not supported", FB),
    (-111, "Mẫu ZNS không có dữ liệu", "template data empty", C),
    (-112, "Dữ liệu mẫu ZNS không hợp lệ", "template data invalid", C),
    (-1121, "Dữ liệu tham số vượt quá giới hạn ký tự", "parameter over its length limit", C),
    (-1122, "Dữ liệu mẫu ZNS thiếu tham số", "template data missing a parameter", C),
    (-1124, "Dữ liệu tham số không đúng định dạng", "parameter in the wrong format", C),
    (-113, "Button không hợp lệ", "button or link invalid", C),
    (-114, "Người dùng không nhận được ZNS vì trạng thái tài khoản, tùy chọn nhận ZNS hoặc "
           "phiên bản Zalo cũ", "user inactive, refuses ZNS, or outdated Zalo", FB),
    (-115, "Tài khoản ZNS không đủ số dư", "ZNS account balance too low", B),
    (-116, "Nội dung không hợp lệ", "content violates the rules", C),
    (-117, "OA hoặc ứng dụng chưa được cấp quyền sử dụng mẫu ZNS này",
     "OA or application not allowed this template", C),
    (-118, "Tài khoản Zalo không tồn tại hoặc đã bị vô hiệu hoá",
     "not a Zalo account (or disabled)", FB),
    (-119, "Tài khoản không thể nhận ZNS", "account cannot receive ZNS", FB),
    (-120, "OA chưa được cấp quyền sử dụng tính năng này", "OA lacks this feature", C),
    (-121, "Mẫu ZNS không có nội dung", "template has no content", F),
    (-122, "Body request không đúng định dạng JSON", "request body is not JSON", F),
    (-123, "Giải mã nội dung thông báo RSA thất bại", "RSA decryption failed", F),
    (-124, "Mã truy cập không hợp lệ", "access token invalid or expired", T),
    (-125, "ID Official Account không hợp lệ", "OA id invalid", C),
    (-126, "Ví (development mode) không đủ số dư", "development wallet empty", B),
    (-127, "Template test chỉ có thể được gửi cho quản trị viên",
     "test template: admins only", C),
    (-128, "Mã encoding key không tồn tại", "encoding key missing", F),
    (-129, "Không thể tạo RSA key, vui lòng thử lại sau", "RSA key could not be made", F),
    (-130, "Nội dung mẫu ZNS vượt quá giới hạn kí tự", "template over its character limit", C),
    (-131, "Mẫu ZNS chưa được phê duyệt", "template not approved", C),
    (-132, "Tham số không hợp lệ", "parameter invalid", C),
    (-133, "Mẫu ZNS này không được phép gửi vào ban đêm (từ 22h-6h)",
     "template not allowed 22:00-06:00", N),
    (-134, "Người dùng chưa phản hồi gợi ý nhận ZNS từ OA",
     "user has not answered the opt-in", FB),
    (-135, "OA chưa có quyền gửi ZNS", "OA has no ZNS right", C),
    (-1351, "OA không có quyền gửi ZNS (bị chặn)", "OA blocked from ZNS", C),
    (-136, "Cần kết nối với ZCA để sử dụng tính năng thanh toán", "ZCA connection needed", B),
    (-137, "Thanh toán ZCA thất bại", "ZCA payment failed", B),
    (-138, "Ứng dụng không có quyền sử dụng tính năng này", "application lacks the right", C),
    (-139, "Người dùng từ chối nhận loại ZNS này", "user refused this ZNS type", FB),
    (-140, "OA chưa được cấp quyền gửi ZNS hậu mãi cho người dùng này",
     "post-sale ZNS not allowed for this user", FB),
    (-141, "Người dùng từ chối nhận ZNS từ Official Account",
     "user refused ZNS from this OA", FB),
    (-142, "RSA key không tồn tại", "RSA key missing", F),
    (-143, "RSA key đã tồn tại", "RSA key exists already", F),
    (-144, "OA đã vượt giới hạn gửi ZNS trong ngày", "OA over its daily ZNS limit", Q),
    (-1441, "OA đã vượt giới hạn gửi ZNS trong tháng", "OA over its monthly ZNS limit", Q),
    (-145, "OA không được phép gửi loại nội dung ZNS này", "content type not allowed", C),
    (-146, "Mẫu ZNS đã bị vô hiệu hoá do chất lượng gửi thấp",
     "template disabled for low quality", C),
    (-147, "Mẫu ZNS đã vượt giới hạn gửi trong ngày", "template over its daily limit", Q),
    (-1471, "Người dùng đã vượt giới hạn nhận ZNS trong tháng",
     "user over the monthly per-user limit", FB),
    (-148, "Không tìm thấy ZNS journey token", "journey token not found", F),
    (-149, "ZNS journey token không hợp lệ", "journey token invalid", F),
    (-150, "ZNS journey token đã hết hạn", "journey token expired", F),
    (-151, "Không phải mẫu ZNS E2EE", "not an E2EE template", F),
    (-152, "Lấy E2EE key thất bại", "E2EE key not obtained", F),
    (-153, "Dữ liệu truyền vào sai quy định", "request data against the rules", F),
    (-161, "Tham số sending_mode không hợp lệ", "sending_mode invalid", F),
    (-162, "Không được phép dùng sending_mode này", "sending_mode not allowed", F),
    # -- OA ------------------------------------------------------------------------------------
    (-201, "Tham số không hợp lệ", "OA API: parameter invalid", C),
    (-204, "OA đã bị xoá", "OA deleted", C),
    (-205, "OA không tồn tại", "OA does not exist", C),
    (-209, "Ứng dụng chưa được kích hoạt hoặc đã bị xoá", "application inactive or removed", C),
    (-211, "Vượt quá quota", "OA over its quota", Q),
    (-213, "Người dùng chưa quan tâm OA", "user does not follow the OA", FB),
    (-216, "Access token không hợp lệ", "access token invalid (OA API)", T),
    (-218, "Vượt giới hạn gửi tin đến người dùng này", "per-user limit reached", FB),
    (-219, "Ứng dụng đã bị gỡ bỏ hoặc vô hiệu hoá", "application removed or disabled", C),
    (-220, "Access token đã hết hạn hoặc bị thu hồi", "access token expired or revoked", T),
    (-221, "OA chưa được xác thực", "OA not verified", C),
    (-224, "OA chưa mua gói dịch vụ", "OA has no service package", C),
    (-227, "Người dùng bị khoá hoặc không hoạt động quá 45 ngày",
     "user locked or inactive for 45 days", FB),
    (-230, "Người dùng không tương tác với OA trong 7 ngày",
     "user has not interacted in 7 days", FB),
    (-232, "Người dùng chưa có tương tác hoặc tương tác đã hết hạn", "interaction expired", FB),
    (-234, "Không được gửi tin vào ban đêm", "not allowed at night", N),
    (-240, "API gửi tin v2 đã ngừng hoạt động", "v2 API retired", C),
    (-244, "Người dùng đã hạn chế nhận loại tin này", "user restricted this message type", FB),
    (-248, "OA vi phạm chính sách nền tảng", "platform policy violation", C),
]

#: Zalo ``error`` codes -> what they mean and what Loa does.
CODES: dict[int, Code] = {code: Code(vi, en, out) for code, vi, en, out in _TABLE}

#: The codes that say this recipient can never be sent to on Zalo by this OA (an invalid phone
#: number, a user who refused the OA's ZNS): the number joins the Zalo suppression list.
UNREACHABLE_CODES = frozenset({-108, -141})

#: The codes whose recipients SMS may reach (ZaloConfig.sms_fallback_codes by default).
FALLBACK_CODES = frozenset(code for code, c in CODES.items() if c.outcome is Outcome.FALLBACK)
