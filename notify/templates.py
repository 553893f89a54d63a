"""The notices' texts in en and zh-CN, chosen by the recipient's language (en when unknown).

``render(kind, language, facts)`` gives a subject and a plain-text body. ``facts`` is the
notice's data plus what the case's reading adds (``case_id``, ``category``, ``subject``, the
``rulebook`` entries of the category that the acknowledgement cites, and ``state_label`` where
the desk declares what the state reads as to the recipient's party: read through the services
by outbox/texts.py, never from raw events). A body with a ``state_label`` ends with it, so a
notice says where the case stands in the recipient's own words; without one the body is the
notice's generic text. Deadlines are shown in UTC
for en and in China Standard Time for zh-CN, each saying which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from notify.rules import LANGUAGES, CategoryRules
from workflow.model import from_iso

CST = timezone(timedelta(hours=8), "CST")

CATEGORY_LABELS = {
    "en": {
        "product_quality": "product quality",
        "counterfeit": "counterfeit goods",
        "not_received": "goods not received",
        "not_as_described": "not as described",
        "after_sales": "after-sales service",
        "false_advertising": "false advertising",
        "other": "other",
    },
    "zh-CN": {
        "product_quality": "商品质量",
        "counterfeit": "假冒商品",
        "not_received": "未收到货",
        "not_as_described": "货不对板",
        "after_sales": "售后服务",
        "false_advertising": "虚假宣传",
        "other": "其他",
    },
}
TIMER_LABELS = {
    "en": {
        "assignment": "mediator assignment",
        "merchant_response": "merchant's response",
        "resolution": "resolution",
        "ruling": "ruling",
        "fulfilment": "fulfilment",
    },
    "zh-CN": {
        "assignment": "分配调解员",
        "merchant_response": "商家答复",
        "resolution": "调解结案",
        "ruling": "裁决",
        "fulfilment": "履行",
    },
}
NEXT_STEPS = {
    "en": "A mediator will take up your case; the merchant is asked to respond. You will be told of every step.",
    "zh-CN": "调解员将受理您的投诉，商家将被要求答复。每一步进展我们都会通知您。",
}
PAUSED = {"en": "paused", "zh-CN": "已暂停"}
WHERE_IT_STANDS = {"en": "Where it stands: ", "zh-CN": "当前状态："}


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str


def language_of(preferred: str | None) -> str:
    """The template language for a stated preference (``zh``, ``zh-CN``, ``en-GB``, ...)."""
    if preferred and preferred.lower().startswith("zh"):
        return "zh-CN"
    return "en"


def deadline(instant: str | None, language: str) -> str:
    if instant is None:
        return PAUSED[language]
    moment = from_iso(instant)
    if language == "zh-CN":
        return moment.astimezone(CST).strftime("%Y-%m-%d %H:%M") + "（北京时间）"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def timer_label(name: str, language: str) -> str:
    return TIMER_LABELS[language].get(name, name)


def _deadlines(items: Any, language: str) -> str:
    lines = [f"- {timer_label(i['timer'], language)}: {deadline(i['due_at'], language)}" for i in items or ()]
    if not lines:
        return "-" if language == "en" else "（暂无）"
    return "\n".join(lines)


def _rulebook(entries: Any, language: str) -> list[str]:
    """The rulebook entries that apply to the case's category, each in plain language with its
    citation (the desk's rulebook.yaml, read by outbox/texts.py): what the mediators will apply."""
    if not entries:
        return []
    zh = language == "zh-CN"
    lines = [
        "适用的法规和平台规则（调解员据此处理）："
        if zh
        else "The rules that apply to this kind of complaint (the mediator applies them):"
    ]
    for entry in entries:
        title, summary = entry["title"].get(language, ""), entry["summary"].get(language, "")
        lines.append(
            f"- {title}（{entry['citation']}）：{summary}" if zh else f"- {title} ({entry['citation']}): {summary}"
        )
    return lines


def render(kind: str, language: str, facts: Mapping[str, Any], category_rules: CategoryRules | None = None) -> Rendered:
    """The subject and body of one notice (or digest entry) in ``language`` (en or zh-CN)."""
    rendered = _render(kind, language, facts, category_rules)
    label = facts.get("state_label")
    if not label or not facts.get("case_id"):
        return rendered
    lang = language if language in LANGUAGES else "en"
    return Rendered(rendered.subject, f"{rendered.body}\n{WHERE_IT_STANDS[lang]}{label}")


def _render(kind: str, language: str, facts: Mapping[str, Any], category_rules: CategoryRules | None) -> Rendered:
    lang = language if language in LANGUAGES else "en"
    case_id = str(facts.get("case_id", ""))
    # A desk's own categories bring their titles (outbox/texts.py); the engine's seven read as labels.
    titles = facts.get("category_titles")
    category = (titles.get(lang) if isinstance(titles, dict) else None) or CATEGORY_LABELS[lang].get(
        str(facts.get("category", "")), str(facts.get("category", ""))
    )
    zh = lang == "zh-CN"
    f = dict(facts)
    if kind == "acknowledgement":
        rules = category_rules or CategoryRules()
        lines = [
            (
                f"您的投诉已受理，案件编号 {case_id}，类别：{category}。"
                if zh
                else f"We received your complaint. Case {case_id}, filed under: {category}."
            ),
            ("接下来：" if zh else "What happens next: ") + NEXT_STEPS[lang],
            ("当前期限：" if zh else "Deadlines now running:"),
            _deadlines(f.get("deadlines"), lang),
        ]
        if rules.rule.get(lang):
            lines.append(("适用规则：" if zh else "Platform rule: ") + rules.rule[lang])
        if rules.legal_basis.get(lang):
            lines.append(("法律依据：" if zh else "Legal basis: ") + rules.legal_basis[lang])
        lines.extend(_rulebook(f.get("rulebook"), lang))
        subject = f"投诉已受理：{case_id}" if zh else f"Complaint received: {case_id}"
        return Rendered(subject, "\n".join(lines))
    if kind == "new_claim":
        due = deadline(f.get("due_at"), lang)
        subject = f"新的投诉：{case_id}，请于 {due} 前答复" if zh else f"New claim {case_id}: respond by {due}"
        body = (
            f"消费者就{category}对贵店提出投诉（案件 {case_id}）。请在 {due} 前答复。"
            if zh
            else f"A consumer filed a claim ({category}) against you: case {case_id}. Respond by {due}."
        )
        return Rendered(subject, body)
    if kind == "assigned":
        subject = f"新分配的案件：{case_id}" if zh else f"Case assigned to you: {case_id}"
        body = (f"案件 {case_id}（{category}）已分配给您。\n" if zh else f"Case {case_id} ({category}) is yours.\n") + (
            _deadlines(f.get("deadlines"), lang)
        )
        return Rendered(subject, body)
    if kind == "offer":
        amount = f"{int(f.get('amount', 0)) / 100:.2f} {f.get('currency', '')}"
        subject = f"收到和解方案：{case_id}" if zh else f"An offer to answer: {case_id}"
        body = (
            f"对方在案件 {case_id} 中提出和解方案：{amount}。请在期限前回复：\n"
            if zh
            else f"The other party offers {amount} on case {case_id}. Please answer before the deadline:\n"
        ) + _deadlines(f.get("deadlines"), lang)
        return Rendered(subject, body)
    if kind == "info_request":
        subject = f"需要您补充信息：{case_id}" if zh else f"Information requested: {case_id}"
        body = (
            f"调解员在案件 {case_id} 中需要您补充信息。请在期限前答复：\n"
            if zh
            else f"The mediator asks you for information on case {case_id}. Please answer before the deadline:\n"
        ) + _deadlines(f.get("deadlines"), lang)
        return Rendered(subject, body)
    if kind == "ruling":
        subject = f"案件已裁决：{case_id}" if zh else f"Ruling on case {case_id}"
        body = (
            f"高级调解员已就案件 {case_id} 作出裁决：{f.get('outcome')}。"
            if zh
            else f"A senior mediator ruled on case {case_id}: {f.get('outcome')}."
        )
        return Rendered(subject, body)
    if kind == "reminder":
        due = deadline(f.get("due_at"), lang)
        timer = timer_label(str(f.get("timer", "")), lang)
        subject = f"期限提醒：{case_id}，{timer}截止 {due}" if zh else f"Reminder: {case_id}, {timer} due {due}"
        body = (
            f"案件 {case_id} 的{timer}期限将于 {due} 届满，请及时处理。"
            if zh
            else f"The {timer} deadline of case {case_id} falls at {due}. Please act before then."
        )
        return Rendered(subject, body)
    if kind == "deadline_changed":
        changes = f.get("changes") or []
        lines = []
        for change in changes:
            timer = timer_label(str(change.get("timer", "")), lang)
            old, new = deadline(change.get("old_due_at"), lang), deadline(change.get("new_due_at"), lang)
            why = change.get("why", "")
            lines.append(
                f"- {timer}：原期限 {old}，新期限 {new}（原因：{why}）"
                if zh
                else f"- {timer}: was {old}, now {new} (why: {why})"
            )
        first = changes[0] if changes else {}
        new_due = deadline(first.get("new_due_at"), lang)
        subject = f"期限变更：{case_id}，新期限 {new_due}" if zh else f"Deadline changed: {case_id}, now {new_due}"
        head = f"案件 {case_id} 的期限已变更：" if zh else f"The deadlines of case {case_id} moved:"
        return Rendered(subject, "\n".join([head, *lines]))
    if kind == "breach":
        timer = timer_label(str(f.get("timer", "")), lang)
        subject = f"期限已超时：{case_id}" if zh else f"Deadline breached: {case_id}"
        body = (
            f"案件 {case_id} 的{timer}期限（{deadline(f.get('due_at'), lang)}）已超时。"
            if zh
            else f"The {timer} deadline of case {case_id} ({deadline(f.get('due_at'), lang)}) was breached."
        )
        return Rendered(subject, body)
    if kind == "endpoint_disabled":
        subject = "Webhook 端点已停用" if zh else "Webhook endpoint disabled"
        body = (
            f"端点 {f.get('endpoint_id')}（{f.get('url')}）已停用：{f.get('reason')}。修复后可重新发送失败的投递。"
            if zh
            else f"Endpoint {f.get('endpoint_id')} ({f.get('url')}) was disabled: {f.get('reason')}. "
            "Fix it, then re-send the failed deliveries."
        )
        return Rendered(subject, body)
    subject = f"案件动态：{case_id}" if zh else f"Case update: {case_id}"
    return Rendered(subject, subject)


def digest(language: str, entries: list[Rendered]) -> Rendered:
    """One e-mail for a day's notices (the daily-digest preference)."""
    lang = language if language in LANGUAGES else "en"
    count = len(entries)
    subject = (
        f"每日通知摘要（{count} 条）"
        if lang == "zh-CN"
        else f"Your daily digest ({count} notice{'' if count == 1 else 's'})"
    )
    body = "\n\n".join(f"{e.subject}\n{e.body}" for e in entries)
    return Rendered(subject, body)
