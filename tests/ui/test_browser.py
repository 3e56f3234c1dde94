"""End to end in Debian's Chromium: the practitioners' web page over a real partnership.

Scenario 1 (Maya, 7, Oakfield Primary) from the fictional practice scenarios: the school's
designated safeguarding lead refers in her browser, the front door acknowledges and
decides in its own, and the outcome appears on the teacher's open page without a reload.
Scenario 6: an academy's DSL picks "legitimate interests" and is refused in the form.
Every page is screenshotted (desktop and phone width) under ``test-artifacts/ui/`` and
checked with axe-core; no serious or critical violation and no CSP violation is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.ui.harness import ARTIFACTS, STAFF_PASSWORD, World
from tests.ui.pages import PHONE, WAIT_MS, Person, open_person, sign_in

pytestmark = pytest.mark.slow

expect: Any = None


@pytest.fixture(autouse=True)
def _expect(browser: Any) -> None:
    global expect
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=WAIT_MS)
    expect = playwright_expect


@pytest.fixture(name="people")
def _people(browser: Any, world: World) -> Iterator[dict[str, Person]]:
    """Each member of staff in their own browser context; checked for CSP errors after."""
    people = {key: open_person(browser, key, url) for key, url in world.urls.items()}
    try:
        yield people
        for person in people.values():
            assert person.csp_errors() == [], person.csp_errors()
            assert person.serious_violations() == {}, person.serious_violations()
    finally:
        for person in people.values():
            person.context.close()
        for clock in world.clocks.values():
            clock.reset()


def fill_referral_details(page: Any) -> None:
    """Step 1 for scenario 1 (all fictional)."""
    page.select_option("#to", "northshire-mash/front-door")
    page.get_by_label("First name").fill("Maya")
    page.get_by_label("Last name").fill("Bennett")
    page.fill("#child_dob", "2019-03-14")
    page.get_by_label("School, college or setting").fill("Oakfield Primary School (Year 3)")
    page.fill("#child_address_line", "12 Larch Close")
    page.fill("#child_town", "Northbridge")
    page.fill("#child_postcode", "NB4 7QT")
    page.fill("#hh0_name", "Laura Bennett")
    page.fill("#hh0_relationship", "mother")
    page.check("#hh0_lives_with")
    page.check("#hh0_pr")
    page.fill("#hh1_name", "Craig Dawson")
    page.fill("#hh1_relationship", "stepfather")
    page.check("#hh1_lives_with")
    page.check("#hh1_alleged")
    page.get_by_label("Physical abuse").check()
    page.get_by_label("Describe the concern").fill(
        "Maya has a bruise on her upper left arm and told her teacher it came from her "
        "stepfather when he was angry. Attendance has dropped this half term."
    )
    page.fill("#child_words", "Craig did it when he was angry. He squeezed really hard.")
    page.fill("#child_words_said_to", "Class teacher, Mr Evans")
    page.fill("#fact_statement", "Bruise about 4 cm by 2 cm on the outside of the upper left arm.")
    page.fill("#fact_source", "Class teacher, Mr Evans")
    page.fill("#opinion_statement", "The marks look like a grip; Maya seemed frightened.")
    page.fill("#opinion_source", "Designated safeguarding lead")
    page.check("#facts_vs_opinion_marked")
    page.check("#immediate_risk")  # yes
    page.fill("#child_location_now", "In school until 15:15")
    page.check("#safe_to_go_home-unknown")
    page.check("#parents_aware-no")
    page.fill("#parents_reason", "Telling the family first would increase the risk to Maya.")
    page.fill("#requested_action", "Please advise before 15:00 whether Maya can go home.")


def fill_reasons(page: Any) -> None:
    """Step 3's written reasons, consent and transparency for scenario 1."""
    page.fill("#necessity", "A disclosure of physical harm by a household member.")
    page.fill("#proportionality", "Only what the front door needs to assess the risk today.")
    page.fill("#substantial_public_interest", "Protecting a child from abuse (Sch 1 para 18).")
    page.fill("#public_interest", "The risk of significant harm outweighs confidentiality.")
    page.select_option("#consent_parent_or_pr_holder_reason", "data_subject_is_alleged_perpetrator")
    page.select_option("#consent_child_reason", "cannot_be_given_age_or_capacity")
    page.check("#told_family-no")
    page.select_option("#not_told_reason", "would_increase_risk_to_child")


def test_referral_acknowledged_and_decided_outcome_appears_live(
    world: World, people: dict[str, Person]
) -> None:
    teacher, front_door = people["school"], people["mash"]
    page = teacher.page

    sign_in(teacher)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    teacher.check("01-inbox-empty")
    page.get_by_role("link", name="Refer a child").first.click()

    # Step 1: empty form first: errors are listed and linked to their fields.
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the child's first name")
    teacher.check("02-refer-errors")
    fill_referral_details(page)
    teacher.check("03-refer-details")
    page.get_by_role("button", name="Continue").click()

    # Step 2: suggested from step 1 (injury: health; named alleged abuser: offence).
    expect(page.get_by_role("heading", name="What does the referral contain?")).to_be_visible()
    expect(page.locator("#special")).to_be_checked()
    expect(page.locator("#special_categories")).to_be_checked()  # health
    expect(page.locator("#criminal")).to_be_checked()
    teacher.check("04-refer-contents")
    page.get_by_role("button", name="Continue").click()

    # Step 3: the engine explains why a maintained school uses public task, and para 18.
    guidance = page.locator(".guidance")
    expect(guidance).to_contain_text("A maintained school is a public authority")
    expect(guidance).to_contain_text("public task")
    expect(guidance).to_contain_text("paragraph 18")
    expect(page.locator("#art6")).to_be_checked()  # public task, suggested
    expect(page.locator("#statutory_function_citation")).to_have_value(
        "Education Act 2002 s.175(2)"
    )
    fill_reasons(page)
    teacher.check("05-refer-basis")
    page.get_by_role("button", name="Check the lawful basis").click()

    # Step 4: the verdict before anything is sent.
    expect(page.locator("#verdict")).to_contain_text("passes")
    teacher.check("06-refer-check")
    page.get_by_role("button", name="Send the referral").click()

    expect(page.locator(".notice[role=status]")).to_contain_text("Referral sent")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Maya Bennett")
    thread_url = page.url
    assert re.search(r"/threads/[0-9a-f]{32}$", thread_url)
    expect(page.locator(".chronology")).to_contain_text("Accepted by the exchange")
    teacher.check("07-thread-sent")
    page.evaluate("() => { window.stillTheSamePage = true; }")

    # The front door, in its own browser: the referral has arrived by itself.
    sign_in(front_door)
    row = front_door.page.locator("table.threads tr", has_text="Maya Bennett")
    expect(row).to_contain_text("Referral from Oakfield Primary School")
    expect(row).to_contain_text("Acknowledge by")
    front_door.check("08-front-door-inbox")
    row.get_by_role("link", name="Maya Bennett").click()
    fd = front_door.page
    expect(fd.locator(".chronology")).to_contain_text(
        "Craig did it when he was angry. He squeezed really hard."
    )
    expect(fd.locator(".chronology")).to_contain_text("Signature checked")
    front_door.check("09-front-door-thread")

    fd.get_by_label("Your reference").fill("MASH-2026-0412")
    fd.get_by_role("button", name="Send the acknowledgement").click()
    # The sender's own page may refresh itself as its acknowledgement comes back from the
    # relay, so check what was recorded rather than the one-off confirmation notice.
    expect(fd.locator(".chronology")).to_contain_text("MASH-2026-0412")

    # The teacher's open page shows the acknowledgement without a reload.
    expect(page.locator(".chronology")).to_contain_text("MASH-2026-0412")

    fd.select_option("#outcome_code", "STRATEGY_S47")
    fd.get_by_label("What was decided").fill(
        "A strategy discussion is being held today under s.47; police are involved."
    )
    fd.get_by_label("What the referrer should do now").fill(
        "If the stepfather comes to collect Maya, keep her in school and call the allocated "
        "worker straight away. Do not discuss the referral with the family."
    )
    fd.fill("#worker_name", "Aisha Khan")
    fd.fill("#worker_role", "Social worker")
    fd.fill("#worker_phone", "01632 960250")
    front_door.check("10-front-door-decide")
    fd.get_by_role("button", name="Send the decision").click()
    expect(fd.locator("#thread-state")).to_contain_text("Decision given", timeout=WAIT_MS)
    front_door.check("11-front-door-decided")

    # The teacher sees the outcome appear on the thread, on the same page, not reloaded.
    expect(page.locator("#thread-state")).to_contain_text("Decision given", timeout=WAIT_MS)
    expect(page.locator("#thread-state")).to_contain_text("Strategy discussion")
    chronology = page.locator(".chronology")
    expect(chronology).to_contain_text("keep her in school and call the allocated worker")
    expect(chronology).to_contain_text("Aisha Khan")
    expect(page.locator("#live-status")).to_contain_text("something new arrived")
    assert page.evaluate("() => window.stillTheSamePage === true"), "the page was reloaded"
    assert page.url == thread_url
    teacher.check("12-teacher-sees-outcome")

    # And in the inbox, with the outcome.
    teacher.go("/")
    expect(page.locator("table.threads")).to_contain_text("Strategy discussion")
    teacher.check("13-teacher-inbox-outcome")

    # The auditor: signatures and lawful bases, no content.
    auditor = people["auditor"]
    sign_in(auditor)
    audit = auditor.page
    expect(audit.get_by_role("heading", name="Audit report")).to_be_visible()
    expect(audit.locator("table.audit").first).to_contain_text("Verified")
    expect(audit.locator("table.audit").first).to_contain_text("Education Act 2002 s.175(2)")
    content = audit.content()
    assert "Maya" not in content
    assert "Craig" not in content
    auditor.check("14-audit-report")


def test_unlawful_basis_is_refused_in_the_form(world: World, people: dict[str, Person]) -> None:
    dsl = people["academy"]
    page = dsl.page
    sign_in(dsl)
    dsl.go("/refer")
    fill_referral_details(page)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".guidance")).to_contain_text("An academy or free school is a public")
    page.check("#art6-A6_1_f")  # "a template said so"
    page.fill("#lia_reference", "LIA-TEMPLATE-01")
    fill_reasons(page)
    page.get_by_role("button", name="Check the lawful basis").click()

    verdict = page.locator("#verdict")
    expect(verdict).to_contain_text("cannot be sent")
    expect(verdict).to_contain_text("Not allowed by law")
    expect(verdict).to_contain_text("public authorit")
    expect(page.get_by_role("button", name="Send the referral")).to_have_count(0)
    dsl.check("20-refer-refused")

    # Sending anyway (a forged click) is refused by the client's own check: nothing leaves.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.request.post(
        dsl.base + "/refer/send", form={"csrf_token": token or ""}, max_redirects=0
    )
    assert response.status == 422
    assert "cannot be sent" in response.text()
    dsl.go("/")
    expect(page.locator("main")).to_contain_text("You have not sent anything yet.")

    # Changing to public task fixes it.
    dsl.go("/refer/basis")
    page.check("#art6")
    page.get_by_role("button", name="Check the lawful basis").click()
    expect(page.locator("#verdict")).to_contain_text("passes")


def test_forms_without_the_session_token_are_refused(
    world: World, people: dict[str, Person]
) -> None:
    teacher = people["school"]
    page = teacher.page
    sign_in(teacher)
    teacher.go("/refer")
    page.evaluate(
        "() => document.querySelectorAll('input[name=csrf_token]')"
        ".forEach(i => { i.value = 'forged-token'; })"
    )
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This form could not be accepted")
    teacher.check("30-csrf-refused", phone=False)

    # A page on another origin posting to the sign-out form is refused; still signed in.
    attacker = world.extra["attacker_url"](teacher.base)
    page.goto(attacker)
    expect(page.get_by_role("heading", level=1)).to_have_text("This form could not be accepted")
    teacher.go("/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_sessions_expire(world: World, people: dict[str, Person]) -> None:
    teacher = people["school"]
    page = teacher.page
    sign_in(teacher)
    teacher.go("/refer")
    page.get_by_label("First name").fill("Sam")
    world.clocks["school"].advance(timedelta(minutes=31))  # idle timeout is 30 minutes
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("main")).to_contain_text("You were signed out")
    teacher.check("40-session-expired")
    # Signing in again starts afresh; the old session's cookie is worthless.
    sign_in(teacher)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    # Coming back to a page much later: sign in, and land back on that page.
    world.clocks["school"].advance(timedelta(hours=11))
    teacher.go("/refer")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "next=/refer" in page.url
    page.get_by_label("User name").fill("priya")
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Refer a child")).to_be_visible()


def test_sign_in_page_and_wrong_password(world: World, people: dict[str, Person]) -> None:
    teacher = people["school"]
    page = teacher.page
    teacher.go("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    teacher.check("00-sign-in")
    sign_in(teacher, password="not the password at all")
    expect(page.get_by_role("alert")).to_contain_text("The user name or password is not right")
    teacher.check("00-sign-in-wrong")


def test_works_without_javascript_and_from_the_keyboard(browser: Any, world: World) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport=PHONE, locale="en-GB", timezone_id="Europe/London"
    )
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(world.urls["school"] + "/sign-in")
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to main content")
        page.get_by_label("User name").fill("priya")
        page.get_by_label("Password").fill(STAFF_PASSWORD)
        page.keyboard.press("Enter")  # submits the form, no script involved
        expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        # The fallback for live updates: a meta refresh that does not count as activity.
        refresh = page.locator('meta[http-equiv="refresh"]')
        expect(refresh).to_have_count(1)
        assert "auto=1" in (refresh.get_attribute("content") or "")
        page.screenshot(path=str(ARTIFACTS / "50-inbox-no-javascript-phone.png"), full_page=True)
    finally:
        context.close()
