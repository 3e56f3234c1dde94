"""Browser helpers for the web page tests: sign in, screenshots, accessibility and CSP checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.ui.harness import ARTIFACTS, AXE_SOURCE, STAFF, STAFF_PASSWORD

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000
"""Generous upper bounds for auto-waiting (2 shared cores); never a fixed sleep."""


@dataclass
class Person:
    """One member of staff in their own browser context (own cookies, own session)."""

    key: str
    page: Any
    context: Any
    base: str
    console: list[str] = field(default_factory=list)
    a11y: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def go(self, path: str) -> Any:
        """Open ``path`` on this person's agency's page."""
        return self.page.goto(self.base + path)

    def check(self, name: str, *, phone: bool = True) -> None:
        """Screenshot this page (desktop and phone width) and run axe-core over it."""
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        self.a11y[name] = axe_violations(self.page)
        if phone:
            size = self.page.viewport_size
            self.page.set_viewport_size(PHONE)
            self.page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
            self.a11y[f"{name} (phone)"] = axe_violations(self.page)
            self.page.set_viewport_size(size)

    def serious_violations(self) -> dict[str, list[str]]:
        """Pages with serious or critical axe-core violations, and which rules."""
        found: dict[str, list[str]] = {}
        for page, violations in self.a11y.items():
            bad = [
                f"{v['id']}: {v['help']} ({len(v['nodes'])} elements)"
                for v in violations
                if v.get("impact") in ("serious", "critical")
            ]
            if bad:
                found[page] = bad
        return found

    def csp_errors(self) -> list[str]:
        """Console messages about the Content-Security-Policy (there must be none)."""
        return [m for m in self.console if "Content Security Policy" in m]


def open_person(browser: Any, key: str, base: str, *, viewport: dict[str, int] = DESKTOP) -> Person:
    """A fresh browser context for ``key``'s staff member."""
    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/London")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    person = Person(key, page, context, base)
    page.on("console", lambda message: person.console.append(f"{message.type}: {message.text}"))
    return person


def sign_in(person: Person, *, password: str = STAFF_PASSWORD) -> None:
    """Sign in through the form, as a person would."""
    username = STAFF[person.key][0]
    person.go("/sign-in")
    person.page.get_by_label("User name").fill(username)
    person.page.get_by_label("Password").fill(password)
    person.page.get_by_role("button", name="Sign in").click()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run the vendored axe-core (WCAG 2.x A and AA rules) over the page; its violations.

    The engine is injected with ``evaluate`` (a DevTools call, not a page script), so the
    page's strict CSP stays in force while it runs.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
            const r = await window.axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                "wcag22aa", "best-practice"]},
                resultTypes: ["violations"],
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                           nodes: v.nodes.map(n => n.target.join(" "))}));
        }"""
    )
    assert isinstance(result, list)
    return result
