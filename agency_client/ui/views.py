"""The pages: thin handlers that call :class:`AgencyClient` and render a template.

All routes are in :data:`ROUTES` at the end of this module, so the whole page map can
be read in one screen. Handlers never log content; the middleware in
:mod:`agency_client.ui.app` handles sessions, form tokens and errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from agency_client.client import AgencyClient, ThreadView, to_tag
from agency_client.errors import RelayUnreachable
from agency_client.forms import default_reply_basis
from agency_client.ui import display, referral
from agency_client.ui.app import (
    CLIENT,
    FEED,
    GUARD,
    SESSION,
    SESSIONS,
    SETTINGS,
    USERS,
    Handler,
    clear_session_cookie,
    is_live_refresh,
    safe_next,
    set_session_cookie,
)
from agency_client.ui.audit_report import verified_log_report
from agency_client.ui.receipts import receipt_status
from agency_client.ui.sessions import Session
from schemas.codes import OutcomeCode
from schemas.policy import Verdict
from schemas.policy.guidance import suggest_basis
from schemas.problems import ExchangeError, InvalidRequest, LawfulBasisRejected
from schemas.timefmt import format_time

__all__ = ["ROUTES", "PageError", "csrf_refused", "error_page", "signed_out_redirect"]

_THREAD_ID = re.compile(r"^[0-9a-f]{32}$")


class PageError(Exception):
    """A problem to show the person as a page (status, title, one-line explanation)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail


# -- rendering --------------------------------------------------------------------------------


def _session(request: web.Request) -> Session:
    session = request.get(SESSION)
    assert isinstance(session, Session)
    return session


def _base_context(request: web.Request) -> dict[str, Any]:
    session = request.get(SESSION)
    client = request.app[CLIENT]
    user = None
    if isinstance(session, Session) and session.username:
        user = request.app[USERS].get(session.username)
    return {
        "agency_name": client.config.name,
        "agency_role": client.config.role,
        "user": user,
        "csrf_token": session.csrf_token if isinstance(session, Session) else "",
        "flashes": session.take_flashes() if isinstance(session, Session) else [],
        "live_revision": None,
        "errors": {},
        "path": request.path,
    }


def render(
    request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
) -> web.Response:
    """Render ``template`` with the common context (user, token, messages)."""
    full = _base_context(request)
    full.update(context)
    return aiohttp_jinja2.render_template(template, request, full, status=status)


def error_page(request: web.Request, status: int, title: str, detail: str) -> web.Response:
    """A plain error page."""
    return render(request, "error.html", {"title": title, "detail": detail}, status=status)


def csrf_refused(request: web.Request) -> web.Response:
    """The answer to a form without this session's token (or from another site)."""
    return error_page(
        request,
        403,
        "This form could not be accepted",
        "It did not come from this page, or it was opened before you last signed in. Nothing "
        "was sent. Go back, reload the page and try again.",
    )


def see_other(location: str) -> web.Response:
    """A ``303 See Other`` redirect as a plain response (so cookies can be set on it)."""
    return web.Response(status=303, headers={"Location": location})


def signed_out_redirect(request: web.Request, *, expired: bool) -> web.Response:
    """Send the browser to the sign-in page, to come back here afterwards."""
    target = safe_next(request.path_qs if request.method == "GET" else "/")
    query = f"?next={_quote(target)}" if target != "/" else ""
    if expired:
        query += ("&" if query else "?") + "expired=1"
    return see_other(f"/sign-in{query}")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="/")


def _redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


# -- sign-in ----------------------------------------------------------------------------------


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    """The sign-in form (starts an anonymous session so the form has a token)."""
    session = request.get(SESSION)
    if isinstance(session, Session) and session.signed_in:
        raise _redirect("/")
    fresh = session is None
    if session is None:
        session = request.app[SESSIONS].anonymous()
        request[SESSION] = session
    notice = None
    if request.query.get("expired"):
        minutes = int(request.app[SETTINGS].idle_timeout.total_seconds() // 60)
        notice = (
            "You were signed out because the page was not used for a while "
            f"(after {minutes} minutes, or at the end of the day). Sign in again to carry on."
        )
    elif request.query.get("signed_out"):
        notice = "You have signed out."
    response = render(
        request,
        "sign_in.html",
        {"notice": notice, "next": safe_next(request.query.get("next")), "username": ""},
    )
    if fresh:
        set_session_cookie(response, request, session)
    return response


async def sign_in_expired(request: web.Request) -> web.StreamResponse:
    """A sign-in form posted after its session ran out: show a fresh form."""
    session = request.app[SESSIONS].anonymous()
    request[SESSION] = session
    response = render(
        request,
        "sign_in.html",
        {
            "notice": "The sign-in page had been open too long. Please sign in again.",
            "next": "/",
            "username": "",
        },
        status=400,
    )
    set_session_cookie(response, request, session)
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    """Check the user name and password; start a fresh signed-in session."""
    form = await request.post()
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    guard = request.app[GUARD]
    context = {"notice": None, "next": target, "username": username}
    if not username or not password:
        return render(
            request,
            "sign_in.html",
            {**context, "errors": {"username": "Enter your user name and password"}},
            status=400,
        )
    if guard.locked(username):
        minutes = int(request.app[SETTINGS].lockout.total_seconds() // 60)
        return render(
            request,
            "sign_in.html",
            {
                **context,
                "errors": {
                    "username": "Too many wrong passwords: this account is locked for "
                    f"{minutes} minutes. Ask your administrator if you need to sign in sooner."
                },
            },
            status=429,
        )
    user = await request.app[USERS].authenticate(username, password)
    if user is None:
        guard.failed(username)
        return render(
            request,
            "sign_in.html",
            {**context, "errors": {"username": "The user name or password is not right"}},
            status=401,
        )
    guard.succeeded(username)
    session = request.app[SESSIONS].sign_in(request.get(SESSION), user.username, user.password_hash)
    response = see_other(target)
    set_session_cookie(response, request, session)
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    """End the session and forget any draft."""
    request.app[SESSIONS].end(_session(request))
    response = see_other("/sign-in?signed_out=1")
    clear_session_cookie(response, request)
    return response


# -- shared helpers ---------------------------------------------------------------------------


def _client(request: web.Request) -> AgencyClient:
    return request.app[CLIENT]


def _require_agency(request: web.Request) -> None:
    if _client(request).config.role == "auditor":
        raise PageError(
            403,
            "Not available to the auditor",
            "The auditor checks headers and lawful bases; it does not send or read messages.",
        )


def _names(client: AgencyClient) -> dict[str, str]:
    directory = client.cached_directory()
    if directory is None:
        return {}
    names = {}
    for cert in directory.certificates:
        names[cert.body.agency_id] = cert.body.name
    return names


def _agency_name(names: Mapping[str, str], agency_id: str) -> str:
    return names.get(agency_id, agency_id)


def _child_name(body: Mapping[str, Any]) -> str:
    child = body.get("child")
    if not isinstance(child, dict):
        return ""
    return " ".join(str(p) for p in (child.get("given_name"), child.get("family_name")) if p)


def _deadline_rows(view_deadlines: Any, role: str) -> list[dict[str, Any]]:
    rows = []
    for deadline in view_deadlines or ():
        if not isinstance(deadline, dict):
            continue
        owner = str(deadline.get("owner", ""))
        ours = (owner == "recipient") == (role == "received")
        rows.append(
            {
                "code": deadline.get("code"),
                "label": display.label(display.DEADLINE_LABELS, deadline.get("code")),
                "due": deadline.get("due"),
                "met_at": deadline.get("met_at"),
                "met_late": bool(deadline.get("met_late")),
                "overdue": bool(deadline.get("overdue")),
                "ours": ours,
                "cite": deadline.get("cite"),
            }
        )
    return rows


def _next_deadline(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    open_rows = [r for r in rows if not r["met_at"]]
    return min(open_rows, key=lambda r: str(r["due"])) if open_rows else None


async def _thread_row(
    client: AgencyClient, view: ThreadView, names: Mapping[str, str]
) -> dict[str, Any]:
    opening = await client.store.message(view.thread_id)
    body = opening.content.get("body", {}) if opening is not None else {}
    deadlines = _deadline_rows(view.deadlines, view.role)
    summary = view.summary or {}
    return {
        "thread_id": view.thread_id,
        "child": _child_name(body if isinstance(body, dict) else {}) or "(no child named)",
        "kind": view.kind,
        "role": view.role,
        "counterpart": _agency_name(names, view.counterpart),
        "state": view.state,
        "overdue": view.overdue,
        "outcome": summary.get("outcome_code"),
        "next_deadline": _next_deadline(deadlines),
        "needs_action": view.role == "received" and view.state in {"DELIVERED", "ACKNOWLEDGED"},
        "opened_at": view.opened_at,
        "updated_at": view.updated_at,
    }


# -- inbox ------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    """The inbox: threads received and sent, with state and deadlines (overdue first)."""
    client = _client(request)
    if client.config.role == "auditor":
        raise _redirect("/audit")
    show = request.query.get("show", "all")
    views, reachable = await client.threads(overdue_only=show == "overdue")
    names = _names(client)
    rows = [await _thread_row(client, v, names) for v in views]
    rows.sort(key=lambda r: (not r["overdue"], -r["updated_at"].timestamp()))
    received = [r for r in rows if r["role"] == "received"]
    sent = [r for r in rows if r["role"] == "sent"]
    return render(
        request,
        "inbox.html",
        {
            "received": received,
            "sent": sent,
            "overdue_count": sum(1 for r in rows if r["overdue"]),
            "show": show,
            "reachable": reachable,
            "live_revision": request.app[FEED].revision,
            "live": not is_live_refresh(request),
        },
    )


# -- a thread ---------------------------------------------------------------------------------


def _body_details(kind: str, body: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The parts of a message body worth showing, as (label, text or list) pairs."""
    rows: list[tuple[str, Any]] = []

    def add(label: str, value: Any) -> None:
        if value not in (None, "", [], ()):
            rows.append((label, value))

    if kind == "REFERRAL":
        child = body.get("child") or {}
        add("Child", _child_name(body))
        add("Date of birth", child.get("date_of_birth"))
        add("School or setting", child.get("school"))
        address = child.get("address") or {}
        if address:
            add(
                "Address",
                ", ".join(
                    [
                        *address.get("lines", []),
                        address.get("town") or "",
                        address.get("postcode") or "",
                    ]
                ).strip(", "),
            )
        add(
            "Concerns",
            ", ".join(
                display.label(display.CONCERN_LABELS, c) for c in body.get("concern_categories", [])
            ),
        )
        add("The concern", body.get("concern_summary"))
        for words in body.get("child_words", []):
            add(f"In the child's words (said to {words.get('said_to')})", f"“{words.get('words')}”")
            add("How it came up", words.get("context"))
        for obs in body.get("observations", []):
            kind_label = "Fact" if obs.get("fact_or_opinion") == "fact" else "Opinion"
            add(f"{kind_label} ({obs.get('source')})", obs.get("statement"))
        add(
            "Household",
            [
                f"{m.get('name')}, {m.get('relationship')}"
                + (", lives with the child" if m.get("lives_with_child") else "")
                + (", alleged to have caused harm" if m.get("alleged_perpetrator") else "")
                for m in body.get("family_and_household", [])
            ],
        )
        add("Immediate risk", "Yes" if body.get("immediate_risk") else "No")
        add("Where the child is now", body.get("child_location_now"))
        add("Safe to go home", str(body.get("safe_to_go_home", "")).capitalize())
        aware = body.get("parents_aware") or {}
        add(
            "Parents or carers know",
            {"yes": "Yes", "no": "No", "not_yet": "Not yet"}.get(str(aware.get("status")), "")
            + (f": {aware['reason']}" if aware.get("reason") else ""),
        )
        add("Asked of the front door", body.get("requested_action"))
    elif kind == "ACKNOWLEDGEMENT":
        add("Their reference", body.get("reference"))
        contact = body.get("contact_for_followup") or {}
        add("Contact", _contact_text(contact))
    elif kind == "DECISION_FEEDBACK":
        add("Decision", display.label(display.OUTCOME_LABELS, body.get("outcome_code")))
        add("What was decided", body.get("summary_for_referrer"))
        add("What you should do next", body.get("referrer_next_steps"))
        add("Allocated worker", _contact_text(body.get("allocated_worker") or {}))
        add("Why the threshold was not met", body.get("threshold_not_met_reasons"))
        add("Other support suggested", body.get("alternative_support_suggested"))
    elif kind == "REQUEST_FOR_INFORMATION":
        add("Child", _child_name(body))
        add("Information requested", body.get("information_requested"))
        add("Why it is needed", body.get("request_basis_statement"))
        add("Law relied on", body.get("statutory_function_citation"))
        add("Answer by", display.local_time(body.get("response_due_by")))
    elif kind == "RESPONSE_TO_RFI":
        add("Answer", str(body.get("information_provided_or_withheld", "")).capitalize())
        add("Information", body.get("information"))
        add("Why information was withheld", body.get("withholding_reason"))
    else:
        add("Child", _child_name(body))
        add("Summary", body.get("concern_summary") or body.get("incident_summary"))
    return rows


def _contact_text(contact: Mapping[str, Any]) -> str:
    if not contact:
        return ""
    parts = [contact.get("name"), contact.get("role"), contact.get("phone"), contact.get("email")]
    return ", ".join(str(p) for p in parts if p)


async def thread_page(request: web.Request) -> web.StreamResponse:
    """One thread as a chronology, with its deadlines and, for the recipient, reply forms."""
    _require_agency(request)
    thread_id = request.match_info["thread"]
    if not _THREAD_ID.fullmatch(thread_id):
        raise web.HTTPNotFound()
    context = await _thread_context(request, thread_id)
    return render(request, "thread.html", context)


async def _thread_context(
    request: web.Request, thread_id: str, *, form_errors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    client = _client(request)
    local = await client.store.thread(thread_id)
    if local is None:
        raise web.HTTPNotFound()
    names = _names(client)
    relay_state = None
    relay_messages: dict[str, dict[str, Any]] = {}
    reachable = True
    try:
        detail = await client.relay_thread(thread_id)
        relay_state = detail.summary
        relay_messages = {str(m.get("message_id")): m for m in detail.messages}
    except RelayUnreachable:
        reachable = False
    except ExchangeError:
        relay_state = None
    state = relay_state.state if relay_state is not None else local.state
    if relay_state is not None and relay_state.state != local.state:
        await client.store.set_thread_state(thread_id, relay_state.state)
    deadlines = _deadline_rows(relay_state.deadlines if relay_state else (), local.role)
    messages = await client.store.messages(thread_id=thread_id)
    receipts: dict[str, Any] = {}
    if reachable:
        with contextlib.suppress(ExchangeError):
            receipts = await receipt_status(
                client, [m.message_id for m in messages if m.direction == "out"]
            )
    entries = []
    opening_body: dict[str, Any] = {}
    decided = False
    acknowledged = False
    for message in messages:
        body = message.content.get("body") or {}
        if message.message_id == thread_id:
            opening_body = body
        if message.kind == "DECISION_FEEDBACK":
            decided = True
        if message.kind in ("ACKNOWLEDGEMENT", "DECISION_FEEDBACK"):
            acknowledged = True
        sent_by = body.get("sent_by") or {}
        on_relay = relay_messages.get(message.message_id, {})
        verdict = message.content.get("verdict") or {}
        receipt = receipts.get(message.message_id)
        entries.append(
            {
                "id": message.message_id,
                "kind": message.kind,
                "outgoing": message.direction == "out",
                "counterpart": _agency_name(names, message.counterpart),
                "who": _contact_text(sent_by),
                "created_at": message.created_at,
                "stored_at": on_relay.get("stored_at"),
                "sequence": on_relay.get("sequence"),
                "status": message.status,
                "receipt": receipt,
                "delivered_to": [_agency_name(names, a) for a in receipt.delivered_to]
                if receipt
                else [],
                "verdict": verdict.get("decision"),
                "findings": verdict.get("findings", []),
                "details": _body_details(message.kind, body),
            }
        )
    entries.sort(key=lambda e: (e["created_at"], e["stored_at"] or ""))
    can_reply = local.role == "received" and local.kind == "REFERRAL"
    opening = next((m for m in messages if m.message_id == thread_id), None)
    user = request.app[USERS].get(_session(request).username or "")
    contact = dict(client.config.contact)
    if user is not None:
        contact.update({"name": user.name, "role": user.job_role})
        if user.phone:
            contact["phone"] = user.phone
        if user.email:
            contact["email"] = user.email
    return {
        "thread_id": thread_id,
        "child": _child_name(opening_body) or "(no child named)",
        "kind": local.kind,
        "role": local.role,
        "counterpart": _agency_name(names, local.counterpart),
        "state": state,
        "overdue": relay_state.overdue if relay_state is not None else False,
        "outcome": (local.summary or {}).get("outcome_code"),
        "deadlines": deadlines,
        "entries": entries,
        "reachable": reachable,
        "can_acknowledge": can_reply and not acknowledged and opening is not None,
        "can_decide": can_reply and not decided and opening is not None,
        "outcomes": [str(o) for o in OutcomeCode],
        "reference": f"REF-{thread_id[:8].upper()}",
        "contact": contact,
        "form": {},
        "form_errors": dict(form_errors or {}),
        "reply_findings": [],
        "live_revision": request.app[FEED].revision,
        "live": not is_live_refresh(request),
    }


def _form_dict(form: Mapping[str, Any]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    getall = getattr(form, "getall", None)
    for key in form:
        values = getall(key) if getall is not None else [form[key]]
        data[key] = [str(v) for v in values if isinstance(v, str)]
    return data


async def _reply_basis(client: AgencyClient, kind: str, recipient: str) -> dict[str, Any]:
    directory = await client.directory()
    other = directory.agency(recipient, at=client.now())
    return default_reply_basis(
        kind=kind, sender_org_type=client.config.org_type, recipient_org_type=str(other.org_type)
    )


async def _send_reply(
    request: web.Request,
    thread_id: str,
    kind: str,
    fields: dict[str, Any],
    thread_summary: dict[str, Any] | None,
    form: dict[str, list[str]],
) -> web.StreamResponse:
    client = _client(request)
    opening = await client.opening_message(thread_id)
    if opening.direction != "in" or opening.kind != "REFERRAL":
        raise PageError(
            400, "Not a referral you received", "Only the recipient of a referral can answer it."
        )
    basis = await _reply_basis(client, kind, opening.counterpart)
    try:
        result = await client.reply(
            thread_id, kind=kind, fields=fields, basis=basis, thread_summary=thread_summary
        )
    except (LawfulBasisRejected, InvalidRequest) as exc:
        context = await _thread_context(request, thread_id)
        context["form"] = form
        context["reply_findings"] = list(getattr(exc, "findings", []) or [])
        context["form_errors"] = {"reply": exc.diagnostics()}
        return render(request, "thread.html", context, status=422)
    if kind == "DECISION_FEEDBACK":
        await client.store.record_action("outcome", result.message_id)
    request.app[FEED].bump(thread_id)
    what = "Acknowledgement" if kind == "ACKNOWLEDGEMENT" else "Decision"
    session = _session(request)
    if result.queued:
        session.flash(
            "info",
            f"{what} sealed. The exchange could not be reached, so it is waiting in the "
            "outbox and will be sent as soon as the exchange is back.",
        )
    else:
        session.flash(
            "success", f"{what} sent to {_agency_name(_names(client), opening.counterpart)}."
        )
    raise _redirect(f"/threads/{thread_id}")


def _thread_from(request: web.Request) -> str:
    thread_id = request.match_info["thread"]
    if not _THREAD_ID.fullmatch(thread_id):
        raise web.HTTPNotFound()
    return thread_id


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """Send the acknowledgement of a received referral."""
    _require_agency(request)
    thread_id = _thread_from(request)
    form = _form_dict(await request.post())
    client = _client(request)
    opening = await client.opening_message(thread_id)
    contact = _reply_contact(form, "ack_")
    errors = _contact_errors(form, "ack_")
    reference = referral.one(form, "ack_reference") or f"REF-{thread_id[:8].upper()}"
    if errors:
        context = await _thread_context(request, thread_id, form_errors=errors)
        context["form"] = form
        return render(request, "thread.html", context, status=400)
    fields = {
        "sent_by": contact,
        "received_at": opening.content.get("received_at") or format_time(client.now()),
        "contact_for_followup": contact,
        "reference": reference,
    }
    return await _send_reply(request, thread_id, "ACKNOWLEDGEMENT", fields, None, form)


def _reply_contact(form: Mapping[str, list[str]], prefix: str = "") -> dict[str, str]:
    one = referral.one
    contact = {
        "name": one(form, f"{prefix}contact_name"),
        "role": one(form, f"{prefix}contact_role"),
    }
    for key in ("phone", "email"):
        if one(form, f"{prefix}contact_{key}"):
            contact[key] = one(form, f"{prefix}contact_{key}")
    return contact


def _contact_errors(form: Mapping[str, list[str]], prefix: str = "") -> dict[str, str]:
    one = referral.one
    errors = {}
    if not one(form, f"{prefix}contact_name"):
        errors[f"{prefix}contact_name"] = "Enter the name of the person to contact"
    if not one(form, f"{prefix}contact_role"):
        errors[f"{prefix}contact_role"] = "Enter their role"
    if not one(form, f"{prefix}contact_phone") and not one(form, f"{prefix}contact_email"):
        errors[f"{prefix}contact_phone"] = "Give a phone number or an email address"
    return errors


async def decide(request: web.Request) -> web.StreamResponse:
    """Send the decision on a received referral, with the referrer's next steps."""
    _require_agency(request)
    thread_id = _thread_from(request)
    form = _form_dict(await request.post())
    client = _client(request)
    one = referral.one
    errors = _contact_errors(form)
    outcome = one(form, "outcome_code")
    if outcome not in {str(o) for o in OutcomeCode}:
        errors["outcome_code"] = "Choose the decision"
    if not one(form, "summary_for_referrer"):
        errors["summary_for_referrer"] = "Say what was decided, in words the referrer will follow"
    if not one(form, "referrer_next_steps"):
        errors["referrer_next_steps"] = "Say what the referrer should do now"
    worker: dict[str, str] | None = None
    if one(form, "worker_name"):
        worker = {
            "name": one(form, "worker_name"),
            "role": one(form, "worker_role") or "Social worker",
        }
        if one(form, "worker_phone"):
            worker["phone"] = one(form, "worker_phone")
        if one(form, "worker_email"):
            worker["email"] = one(form, "worker_email")
        if "phone" not in worker and "email" not in worker:
            errors["worker_phone"] = "Give the allocated worker's phone number or email address"
    if errors:
        context = await _thread_context(request, thread_id, form_errors=errors)
        context["form"] = form
        return render(request, "thread.html", context, status=400)
    fields: dict[str, Any] = {
        "sent_by": _reply_contact(form),
        "outcome_code": outcome,
        "summary_for_referrer": one(form, "summary_for_referrer"),
        "referrer_next_steps": one(form, "referrer_next_steps"),
        "decided_at": client.now(),
    }
    if worker is not None:
        fields["allocated_worker"] = worker
    if one(form, "threshold_not_met_reasons"):
        fields["threshold_not_met_reasons"] = one(form, "threshold_not_met_reasons")
    if one(form, "alternative_support_suggested"):
        fields["alternative_support_suggested"] = one(form, "alternative_support_suggested")
    return await _send_reply(
        request, thread_id, "DECISION_FEEDBACK", fields, {"outcome_code": outcome}, form
    )


# -- the referral form ------------------------------------------------------------------------


async def _recipients(client: AgencyClient) -> list[dict[str, str]]:
    directory = await client.directory()
    options = []
    for body in directory.agencies(at=client.now()):
        if body.role != "agency" or body.agency_id == client.agency_id:
            continue
        for box in body.mailboxes:
            options.append(
                {
                    "value": f"{body.agency_id}/{box}",
                    "label": f"{body.name} ({box})",
                    "org_type": str(body.org_type),
                }
            )
    options.sort(key=lambda o: (o["org_type"] != "local_authority_childrens_services", o["label"]))
    return options


def _draft(request: web.Request) -> dict[str, Any]:
    return _session(request).draft


def _default_details(request: web.Request) -> dict[str, list[str]]:
    client = _client(request)
    contact = dict(client.config.contact)
    user = request.app[USERS].get(_session(request).username or "")
    if user is not None:
        contact.update({"name": user.name, "role": user.job_role})
        if user.phone:
            contact["phone"] = user.phone
        if user.email:
            contact["email"] = user.email
    return {f"sent_by_{k}": [v] for k, v in contact.items() if v}


async def refer_page(request: web.Request) -> web.StreamResponse:
    """Step 1 of 4: the child and the concern."""
    _require_agency(request)
    draft = _draft(request)
    form = draft.get("details_form") or _default_details(request)
    return await _render_step1(request, form, {})


async def _render_step1(
    request: web.Request,
    form: Mapping[str, list[str]],
    errors: Mapping[str, str],
    status: int = 200,
) -> web.StreamResponse:
    recipients = await _recipients(_client(request))
    return render(
        request,
        "refer_details.html",
        {
            "form": form,
            "errors": dict(errors),
            "recipients": recipients,
            "concerns": referral.concern_choices(),
            "household_rows": range(referral.HOUSEHOLD_ROWS),
            "step": 1,
        },
        status=status,
    )


async def refer_details(request: web.Request) -> web.StreamResponse:
    """Check step 1 and move on to what the referral contains."""
    _require_agency(request)
    form = _form_dict(await request.post())
    form.pop("csrf_token", None)
    recipient, fields, errors = referral.referral_from_form(form)
    recipients = {o["value"] for o in await _recipients(_client(request))}
    if recipient and recipient not in recipients:
        errors["to"] = "Choose who the referral is for from the list"
    draft = _draft(request)
    draft["details_form"] = form
    if errors:
        return await _render_step1(request, form, errors, status=400)
    draft.update({"to": recipient, "fields": fields})
    draft.setdefault("contents", referral.contents_guess(fields))
    raise _redirect("/refer/contents")


def _need(draft: Mapping[str, Any], *keys: str) -> None:
    if any(key not in draft for key in keys):
        raise _redirect("/refer")


async def refer_contents_page(request: web.Request) -> web.StreamResponse:
    """Step 2 of 4: what the referral contains (sensitive information, allegations)."""
    _require_agency(request)
    draft = _draft(request)
    _need(draft, "fields")
    contents = draft.get("contents") or referral.contents_guess(draft["fields"])
    return _render_contents(request, contents, {})


def _render_contents(
    request: web.Request, contents: Mapping[str, Any], errors: Mapping[str, str], status: int = 200
) -> web.Response:
    return render(
        request,
        "refer_contents.html",
        {"contents": contents, "errors": dict(errors), "step": 2},
        status=status,
    )


async def refer_contents(request: web.Request) -> web.StreamResponse:
    """Check step 2 and move on to the lawful basis."""
    _require_agency(request)
    draft = _draft(request)
    _need(draft, "fields")
    contents, errors = referral.contents_from_form(_form_dict(await request.post()))
    if errors:
        return _render_contents(request, contents, errors, status=400)
    if contents != draft.get("contents"):
        draft.pop("basis_form", None)
    draft["contents"] = contents
    raise _redirect("/refer/basis")


async def _suggestion(client: AgencyClient, draft: Mapping[str, Any]) -> dict[str, Any]:
    directory = await client.directory()
    recipient = directory.agency(str(draft["to"]).split("/")[0], at=client.now())
    return suggest_basis(
        client.config.org_type,
        str(recipient.org_type),
        "REFERRAL",
        referral.data_categories(draft["contents"]),
    )


def _basis_defaults(suggestion: Mapping[str, Any]) -> dict[str, list[str]]:
    basis = suggestion["basis"]
    justification = basis.get("justification", {})
    return {
        "art6": [basis["art6"][0]],
        "statutory_function_citation": [justification.get("statutory_function_citation", "")],
        "retention_class": [basis.get("retention_class", "")],
        "not_told_authorised_by": ["Designated safeguarding lead"],
        "consent_parent_or_pr_holder": ["not_sought"],
        "consent_child": ["not_sought"],
    }


async def refer_basis_page(request: web.Request) -> web.StreamResponse:
    """Step 3 of 4: why you may share this, explained by the policy engine."""
    _require_agency(request)
    draft = _draft(request)
    _need(draft, "fields", "contents")
    suggestion = await _suggestion(_client(request), draft)
    form = draft.get("basis_form") or _basis_defaults(suggestion)
    return _render_basis(request, draft, suggestion, form, {})


def _render_basis(
    request: web.Request,
    draft: Mapping[str, Any],
    suggestion: Mapping[str, Any],
    form: Mapping[str, list[str]],
    errors: Mapping[str, str],
    status: int = 200,
) -> web.Response:
    client = _client(request)
    wanted = {item["field"]: item["prompt"] for item in suggestion["to_complete"]}
    from schemas.policy.guidance import ORG_LABELS

    return render(
        request,
        "refer_basis.html",
        {
            "form": form,
            "errors": dict(errors),
            "step": 3,
            "explanation": [p for p in str(suggestion["explanation"]).split("\n\n") if p],
            "suggested_art6": suggestion["basis"]["art6"][0],
            "org_label": ORG_LABELS.get(client.config.org_type, client.config.org_type),
            "public_authority": client.config.public_authority,
            "reasons": [
                (name, wanted[f"justification.{name}"])
                for name in (
                    "necessity",
                    "proportionality",
                    "substantial_public_interest",
                    "public_interest",
                )
                if f"justification.{name}" in wanted
            ],
            "ask_consent": "consent" in wanted,
            "ask_transparency": "transparency" in wanted,
            "ask_retention": "retention_class" in wanted,
            "contents": draft["contents"],
            "basis_codes": suggestion["basis"],
        },
        status=status,
    )


async def refer_basis(request: web.Request) -> web.StreamResponse:
    """Check step 3 and move on to the engine's verdict."""
    _require_agency(request)
    draft = _draft(request)
    _need(draft, "fields", "contents")
    form = _form_dict(await request.post())
    form.pop("csrf_token", None)
    suggestion = await _suggestion(_client(request), draft)
    basis, errors = referral.basis_from_answers(suggestion, draft["contents"], form)
    draft["basis_form"] = form
    if errors:
        return _render_basis(request, draft, suggestion, form, errors, status=400)
    draft["basis"] = basis
    raise _redirect("/refer/check")


async def refer_check_page(request: web.Request) -> web.StreamResponse:
    """Step 4 of 4: the policy engine's verdict, shown before anything is sent."""
    _require_agency(request)
    draft = _draft(request)
    _need(draft, "fields", "contents", "basis")
    client = _client(request)
    problem = None
    verdict: Verdict | None = None
    try:
        verdict = await client.check_basis(
            kind="REFERRAL", recipients=[draft["to"]], basis=draft["basis"]
        )
    except InvalidRequest as exc:
        problem = exc.diagnostics()
    return _render_check(request, draft, verdict, problem)


def _render_check(
    request: web.Request,
    draft: Mapping[str, Any],
    verdict: Verdict | None,
    problem: str | None,
    *,
    findings: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> web.Response:
    names = _names(_client(request))
    to_agency = str(draft["to"]).split("/")[0]
    fields = draft["fields"]
    shown = (
        findings
        if findings is not None
        else ([f.to_json_dict() for f in verdict.findings] if verdict is not None else [])
    )
    decision = verdict.decision if verdict is not None else ("reject" if findings else None)
    basis = draft["basis"]
    return render(
        request,
        "refer_check.html",
        {
            "step": 4,
            "decision": decision,
            "policy_version": verdict.policy_version if verdict is not None else "",
            "findings": shown,
            "problem": problem,
            "recipient": _agency_name(names, to_agency),
            "mailbox": str(draft["to"]).partition("/")[2],
            "child": _child_name(fields),
            "concerns": fields.get("concern_categories", []),
            "basis": basis,
            "relay_sees_json": _relay_sees(basis),
        },
        status=status,
    )


def _relay_sees(basis: Mapping[str, Any]) -> str:
    """The basis codes that travel in the signed header, as the relay sees them."""
    try:
        codes = to_tag(basis).header_codes()
    except ExchangeError:
        codes = {}
    return json.dumps(codes, indent=2, sort_keys=True)


async def refer_send(request: web.Request) -> web.StreamResponse:
    """Seal and send the referral (the basis is checked again; a reject sends nothing)."""
    _require_agency(request)
    draft = _draft(request)
    _need(draft, "fields", "contents", "basis")
    client = _client(request)
    try:
        result = await client.send(
            kind="REFERRAL", to=[draft["to"]], fields=draft["fields"], basis=draft["basis"]
        )
    except LawfulBasisRejected as exc:
        return _render_check(
            request, draft, None, exc.diagnostics(), findings=list(exc.findings), status=422
        )
    except InvalidRequest as exc:
        return _render_check(request, draft, None, exc.diagnostics(), status=400)
    draft.clear()
    request.app[FEED].bump(result.thread_id)
    session = _session(request)
    recipient = _agency_name(_names(client), result.recipients[0][0])
    if result.queued:
        session.flash(
            "info",
            f"Referral sealed for {recipient}. The exchange could not be reached, so it is "
            "waiting in the outbox and will be sent as soon as the exchange is back.",
        )
    else:
        entry = result.receipt.sequence if result.receipt is not None else None
        session.flash(
            "success",
            f"Referral sent to {recipient}. The exchange accepted it"
            + (f" (log entry {entry})" if entry is not None else "")
            + "; you will see here when it is collected, acknowledged and decided.",
        )
    raise _redirect(f"/threads/{result.thread_id}")


async def refer_cancel(request: web.Request) -> web.StreamResponse:
    """Throw the draft away."""
    _draft(request).clear()
    _session(request).flash("info", "The draft referral was deleted. Nothing was sent.")
    raise _redirect("/")


# -- audit ------------------------------------------------------------------------------------


def _audit_failed(entry: Any) -> bool:
    return (
        not entry.signature_ok
        or entry.codes_verdict == "reject"
        or entry.full_verdict == "reject"
        or entry.problem is not None
    )


async def audit_page(request: web.Request) -> web.StreamResponse:
    """The auditor's report: every header's signature and basis, and timeliness."""
    client = _client(request)
    if client.config.role != "auditor":
        raise PageError(
            403,
            "For the partnership auditor",
            "Only the partnership auditor's exchange account can read the audit log.",
        )
    entries = await client.audit()
    names = _names(client)
    rows = []
    for entry in entries:
        justification = entry.justification
        rows.append(
            {
                "sequence": entry.sequence,
                "message_id": entry.message_id,
                "kind": entry.kind,
                "sender": _agency_name(names, entry.sender),
                "recipients": [_agency_name(names, r) for r in entry.recipients],
                "signature_ok": entry.signature_ok,
                "codes": entry.basis_codes,
                "codes_verdict": entry.codes_verdict,
                "full_verdict": entry.full_verdict,
                "citation": (
                    justification.statutory_function_citation
                    or justification.legal_obligation_citation
                    if justification is not None
                    else None
                ),
                "justification_read": justification is not None,
                "findings": list(entry.findings),
                "problem": entry.problem,
                "failed": _audit_failed(entry),
            }
        )
    threads = []
    with contextlib.suppress(ExchangeError):
        for summary in await client.relay_threads():
            raw = summary.raw
            deadlines = _deadline_rows(summary.deadlines, "received")
            threads.append(
                {
                    "thread": summary.thread,
                    "type": raw.get("type"),
                    "referrer": _agency_name(names, str((raw.get("referrer") or {}).get("agency"))),
                    "recipient": _agency_name(
                        names, str((raw.get("recipient") or {}).get("agency"))
                    ),
                    "state": summary.state,
                    "overdue": summary.overdue,
                    "opened_at": raw.get("opened_at"),
                    "deadlines": deadlines,
                    "late": sum(1 for d in deadlines if d["met_late"]),
                }
            )
    log_report = await verified_log_report(client)
    return render(
        request,
        "audit.html",
        {
            "log_report": log_report,
            "rows": rows,
            "failed": sum(1 for r in rows if r["failed"]),
            "threads": threads,
            "overdue": sum(1 for t in threads if t["overdue"]),
            "late": sum(t["late"] for t in threads),
            "checked_at": client.now(),
        },
    )


# -- live updates -----------------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the revision number whenever something arrives (no content)."""
    feed = request.app[FEED]
    sessions = request.app[SESSIONS]
    session = _session(request)
    keepalive = request.app[SETTINGS].keepalive
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    queue = feed.listen()
    try:
        await response.write(f"retry: 5000\nevent: revision\ndata: {feed.revision}\n\n".encode())
        while True:
            try:
                update = await asyncio.wait_for(queue.get(), timeout=keepalive)
            except TimeoutError:
                if not sessions.still_valid(session):
                    await response.write(b"event: signed-out\ndata: {}\n\n")
                    break
                await response.write(b": keep-alive\n\n")
                continue
            if update.revision < 0 or not sessions.still_valid(session):
                break
            data = json.dumps({"revision": update.revision, "thread": update.thread})
            await response.write(f"event: revision\ndata: {data}\n\n".encode())
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        feed.unlisten(queue)
    return response


async def favicon(request: web.Request) -> web.StreamResponse:
    """No icon (saves a 404 on every page)."""
    return web.Response(status=204)


#: Every page: (method, path, handler, name).
ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("GET", "/sign-in", sign_in_page, "sign_in_page"),
    ("POST", "/sign-in", sign_in, "sign_in"),
    ("POST", "/sign-out", sign_out, "sign_out"),
    ("GET", "/", home, "home"),
    ("GET", "/threads/{thread}", thread_page, "thread"),
    ("POST", "/threads/{thread}/acknowledge", acknowledge, "acknowledge"),
    ("POST", "/threads/{thread}/decide", decide, "decide"),
    ("GET", "/refer", refer_page, "refer_page"),
    ("POST", "/refer", refer_details, "refer_details"),
    ("GET", "/refer/contents", refer_contents_page, "refer_contents_page"),
    ("POST", "/refer/contents", refer_contents, "refer_contents"),
    ("GET", "/refer/basis", refer_basis_page, "refer_basis_page"),
    ("POST", "/refer/basis", refer_basis, "refer_basis"),
    ("GET", "/refer/check", refer_check_page, "refer_check_page"),
    ("POST", "/refer/send", refer_send, "refer_send"),
    ("POST", "/refer/cancel", refer_cancel, "refer_cancel"),
    ("GET", "/audit", audit_page, "audit"),
    ("GET", "/events", events, "events"),
    ("GET", "/favicon.ico", favicon, "favicon"),
)
