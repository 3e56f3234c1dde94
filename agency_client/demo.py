"""The end-to-end demo: scenario 1 (Maya, 7, Oakfield Primary) as real processes over HTTP.

``python -m agency_client.demo`` (what ``scripts/demo`` runs) recreates ``./demo-run/``,
creates a partnership root, starts ``exchange serve`` on a free loopback port with the
embedded SQLite database, and runs each agency in a process of its own: the school's
designated safeguarding lead, the council's front door (MASH), a police public-protection
team and the partnership auditor. Every agency step is an ``agency`` command run inside
that agency's process (one process per agency, so the keys are unlocked there and nowhere
else); the partnership administrator's steps are ``exchange`` commands.

Each step says who did what in plain English, what the relay could see (codes only), and
checks its result: the demo exits 0 only if every step did what it should.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["main"]

WORK = Path("demo-run")
TEMPLATES = Path(__file__).parent / "templates"
AGENCY_PASSPHRASE_VAR = "DEMO_AGENCY_PASSPHRASE"
ROOT_PASSPHRASE_VAR = "DEMO_ROOT_PASSPHRASE"
LOG_PASSPHRASE_VAR = "DEMO_LOG_KEY_PASSPHRASE"
RELAY_ID = "northshire-relay"
_WIDTH = 96


class StepFailed(Exception):
    """A demo step did not do what it should."""


@dataclass(frozen=True)
class Outcome:
    """What one command printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Standard output as JSON."""
        try:
            return json.loads(self.out)
        except ValueError:
            raise StepFailed("a command did not print the JSON it should have") from None

    def error_lines(self) -> list[str]:
        """Standard error without progress lines."""
        return [line for line in self.err.splitlines() if line and not line.startswith("...")]


# -- the worker: one process per agency --------------------------------------------------------


def _worker(tool: str) -> int:
    """Run ``agency`` (or ``exchange``) commands read as JSON lines from standard input."""
    import logging

    logging.basicConfig(
        stream=sys.__stderr__, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if tool == "exchange":
        from exchange.cli import main as exchange_main

        def run(argv: list[str]) -> int:
            """One ``exchange`` command."""
            return exchange_main(argv)
    else:
        from agency_client.cli import main as agency_main

        def run(argv: list[str]) -> int:
            """One ``agency`` command."""
            return agency_main(argv)

    channel = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            saved = sys.stdin
            sys.stdin = io.StringIO("")
            try:
                if request.get("op") == "force-refer":
                    code = _force_refer(request["home"], request["form"], request["relay"])
                else:
                    code = run(list(request["argv"]))
            except SystemExit as exc:  # argparse --help and friends
                code = int(exc.code) if isinstance(exc.code, int) else 2
            finally:
                sys.stdin = saved
        channel.write(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue()}))
        channel.write("\n")
        channel.flush()
    return 0


def _force_refer(home: str, form_path: str, relay: str) -> int:
    """Send a referral with the sender's own policy check switched off (to show the relay's).

    This is what a modified or buggy client could do. The envelope is sealed and signed
    properly; only the local refusal is skipped. Prints the relay's answer as JSON.
    """
    import keys.sealing
    from agency_client.client import AgencyClient
    from agency_client.forms import load_form, split_form
    from agency_client.settings import ClientSettings
    from schemas.problems import ExchangeError

    async def attempt() -> dict[str, Any]:
        """Send once with the local refusal switched off."""
        settings = ClientSettings(home=Path(home), relay_url=relay, max_attempts=2)
        secret = os.environ[AGENCY_PASSPHRASE_VAR].encode()
        client = await AgencyClient.open(settings, secret)
        original = getattr(keys.sealing, "raise_for_verdict")  # noqa: B009
        setattr(keys.sealing, "raise_for_verdict", lambda verdict: None)  # noqa: B010
        try:
            to, basis, fields = split_form(load_form(form_path))
            await client.send(kind="REFERRAL", to=to, fields=fields, basis=basis or {})
            return {"accepted": True}
        except ExchangeError as exc:
            return {"accepted": False, "problem": exc.to_problem()}
        finally:
            setattr(keys.sealing, "raise_for_verdict", original)  # noqa: B010
            await client.close()

    print(json.dumps(asyncio.run(attempt())))
    return 0


class Worker:
    """A long-lived process running one party's commands."""

    def __init__(self, name: str, tool: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self._log = log.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agency_client.demo", "--worker", tool],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )

    def run(
        self, argv: Sequence[str], *, op: dict[str, Any] | None = None, timeout: float = 60
    ) -> Outcome:
        """Run one command in this party's process."""
        proc = self._proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        if proc.poll() is not None:
            raise StepFailed(f"the {self.name} process has stopped (see its log in {WORK})")
        proc.stdin.write(json.dumps(op or {"argv": list(argv)}) + "\n")
        proc.stdin.flush()
        line = _readline(proc.stdout, timeout)
        if not line:
            raise StepFailed(f"the {self.name} process stopped answering")
        data = json.loads(line)
        return Outcome(int(data["code"]), str(data["out"]), str(data["err"]))

    def close(self) -> None:
        """Stop the process."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        self._log.close()


def _readline(stream: IO[str], timeout: float) -> str:
    """Read one line, giving up after ``timeout`` seconds."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise StepFailed(f"no answer within {timeout:.0f} seconds")
        return stream.readline()
    finally:
        selector.close()


# -- narration ---------------------------------------------------------------------------------


class Narrator:
    """Prints the story."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.number = 0

    def title(self, text: str) -> None:
        """A banner line."""
        print("=" * _WIDTH, file=self.out)
        print(text, file=self.out)
        print("=" * _WIDTH, file=self.out)

    def step(self, who: str, what: str) -> None:
        """Start a numbered step: who does what."""
        self.number += 1
        print(file=self.out)
        print(f"Step {self.number}. {who}: {what}", file=self.out)
        print("-" * _WIDTH, file=self.out)

    def say(self, text: str, indent: int = 2) -> None:
        """Explain, wrapped and indented."""
        prefix = " " * indent
        for paragraph in text.split("\n"):
            print(
                textwrap.fill(
                    paragraph, _WIDTH, initial_indent=prefix, subsequent_indent=prefix + "  "
                ),
                file=self.out,
            )
        self.out.flush()

    def relay_saw(self, sent: dict[str, Any]) -> None:
        """Say what the relay could read of a sent message: codes only."""
        sees = sent.get("relay_sees") or {}
        basis = sees.get("basis") or {}
        codes = []
        for name in (
            "art6",
            "annex1_condition",
            "art9_condition",
            "sch1_condition",
            "art10_sch1_condition",
        ):
            value = basis.get(name)
            if value:
                codes.append("+".join(value) if isinstance(value, list) else str(value))
        gateways = ", ".join(basis.get("gateways") or []) or "none"
        self.say(
            f"What the relay saw: {sees.get('kind')} from {sees.get('sender')} to "
            f"{', '.join(sees.get('recipients') or [])}; basis codes {' '.join(codes)}; "
            f"gateways {gateways}. The content and the written justification are encrypted: "
            "the relay cannot read them."
        )


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise StepFailed(what)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StepFailed(f"the relay exited early (see {WORK / 'relay' / 'relay.log'})")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise StepFailed("the relay did not become healthy within 30 seconds")


# -- the scenario ------------------------------------------------------------------------------


AGENCIES: dict[str, dict[str, Any]] = {
    "school": {
        "agency_id": "oakfield-primary",
        "name": "Oakfield Primary School",
        "org_type": "maintained_school",
        "mailbox": "dsl",
        "role": "agency",
        "contact": ("Priya Shah", "Designated safeguarding lead, Oakfield Primary", "01632 960101"),
    },
    "mash": {
        "agency_id": "northshire-mash",
        "name": "Northshire Children's Services MASH",
        "org_type": "local_authority_childrens_services",
        "mailbox": "front-door",
        "role": "agency",
        "contact": ("Tom Okafor", "Social worker, Northshire front door", "01632 960200"),
    },
    "police": {
        "agency_id": "northshire-police-ppu",
        "name": "Northshire Police Public Protection Unit",
        "org_type": "police",
        "mailbox": "public-protection",
        "role": "agency",
        "contact": ("DC Alan Reid", "Detective constable, Northshire Police MASH", "01632 960300"),
    },
    "auditor": {
        "agency_id": "northshire-scp-audit",
        "name": "Northshire Safeguarding Partnership Audit",
        "org_type": "partnership_oversight",
        "mailbox": "audit",
        "role": "auditor",
        "contact": ("Jo Marsh", "Partnership audit officer", "01632 960600"),
    },
}
WHO = {
    "school": "Oakfield Primary's designated safeguarding lead",
    "mash": "The Northshire front door (MASH)",
    "police": "The police public-protection team",
    "auditor": "The partnership auditor",
    "admin": "The partnership administrator",
}


class Demo:
    """The scenario, one checked step at a time."""

    def __init__(self, work: Path, narrator: Narrator) -> None:
        self.work = work
        self.n = narrator
        self.env = dict(os.environ)
        self.env.update(
            {
                AGENCY_PASSPHRASE_VAR: "demo passphrase - never use for real",
                ROOT_PASSPHRASE_VAR: "demo root passphrase - never use for real",
                LOG_PASSPHRASE_VAR: "demo log key passphrase - never use for real",
                "AGENCY_KDF_LIMITS": "interactive",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.pop("AGENCY_HOME", None)
        self.env.pop("AGENCY_RELAY_URL", None)
        self.workers: dict[str, Worker] = {}
        self.relay_proc: subprocess.Popen[bytes] | None = None
        self.relay_url = ""

    # -- plumbing ----------------------------------------------------------------------------

    def start_workers(self) -> None:
        """Start one process per party."""
        logs = self.work / "logs"
        logs.mkdir(parents=True)
        self.workers["admin"] = Worker("administrator", "exchange", self.env, logs / "admin.log")
        for key in AGENCIES:
            self.workers[key] = Worker(key, "agency", self.env, logs / f"{key}.log")

    def agency(self, key: str, *args: str, expect: int | None = 0) -> Outcome:
        """Run an ``agency`` command in one agency's process; check its exit status."""
        home = self.work / key
        argv = ["--home", str(home), "--passphrase-env", AGENCY_PASSPHRASE_VAR]
        if self.relay_url:
            argv += ["--relay", self.relay_url]
        outcome = self.workers[key].run([*argv, *args])
        if expect is not None and outcome.code != expect:
            detail = "; ".join(outcome.error_lines()) or outcome.out.strip()[:300]
            command = next((a for a in args if not a.startswith("-")), "?")
            raise StepFailed(f"'agency {command}' for {key} exited {outcome.code}: {detail}")
        return outcome

    def admin(self, *args: str) -> dict[str, Any]:
        """Run an ``exchange`` administration command; return its JSON output."""
        outcome = self.workers["admin"].run(list(args))
        if outcome.code != 0:
            raise StepFailed(f"'exchange {args[0]}' failed: {'; '.join(outcome.error_lines())}")
        result: dict[str, Any] = outcome.json()
        return result

    def close(self) -> None:
        """Stop every process this demo started."""
        for worker in self.workers.values():
            worker.close()
        if self.relay_proc is not None and self.relay_proc.poll() is None:
            self.relay_proc.terminate()
            try:
                self.relay_proc.wait(10)
            except subprocess.TimeoutExpired:
                self.relay_proc.kill()
                self.relay_proc.wait(5)

    # -- steps -------------------------------------------------------------------------------

    def run(self) -> None:
        """Every step of the scenario, in order."""
        self.start_workers()
        root = self.partnership_root()
        self.start_relay(root)
        self.certify_agencies(root)
        self.school_checks_directory()
        self.wrong_basis_refused()
        self.relay_refuses_forced_basis()
        thread = self.school_refers()
        self.front_door_opens(thread)
        self.front_door_acknowledges(thread)
        request = self.front_door_asks_police(thread)
        self.police_answer(request)
        self.front_door_decides(thread)
        self.teacher_sees_outcome(thread)
        self.school_verifies_receipts()
        self.auditor_checks()

    def partnership_root(self) -> dict[str, Any]:
        """Create the partnership root key."""
        self.n.step(WHO["admin"], "creates the partnership's root key")
        admin = self.work / "admin"
        admin.mkdir()
        root = self.admin(
            "root",
            "init",
            "--out",
            str(admin / "root.key"),
            "--passphrase-env",
            ROOT_PASSPHRASE_VAR,
            "--kdf",
            "interactive",
        )
        _check(len(root.get("public_key", "")) == 44, "the root public key was not created")
        self.n.say(
            f"Root key fingerprint {root['fingerprint']}. Every agency pins this key: the "
            "relay cannot vouch for anyone, only certificates signed by this root count."
        )
        return root

    def relay_log_key(self, root: dict[str, Any]) -> Path:
        """The relay's transparency log key: made, certified by the root, published."""
        relay_dir = self.work / "relay"
        relay_dir.mkdir()
        admin = self.work / "admin"
        key = self.admin(
            "log-key",
            "init",
            "--out",
            str(relay_dir / "log.key"),
            "--relay-id",
            RELAY_ID,
            "--passphrase-env",
            LOG_PASSPHRASE_VAR,
            "--kdf",
            "interactive",
        )
        issued = self.admin(
            "cert",
            "issue",
            "--root-key",
            str(admin / "root.key"),
            "--passphrase-env",
            ROOT_PASSPHRASE_VAR,
            "--request",
            key["request_file"],
            "--out",
            str(admin / "relay-log-certificate.json"),
        )
        _check(
            issued["fingerprint"] == key["fingerprint"],
            "the relay's log certificate is not for the key the relay generated",
        )
        added = self.admin(
            "directory",
            "add",
            str(admin / "relay-log-certificate.json"),
            "--database-url",
            f"sqlite+aiosqlite:///{relay_dir / 'relay.db'}",
            "--root-public-key",
            root["public_key"],
        )
        _check(added["certificates_added"] == 1, "the relay's log certificate was not published")
        self.n.say(
            f"The relay's transparency log key (fingerprint {key['fingerprint']}) was generated "
            "on the relay machine; the administrator checked its certificate request and "
            "certified it with the root (role 'relay'). The relay signs its tree heads with it, "
            "so anyone holding the root can check them."
        )
        return relay_dir / "log.key"

    def start_relay(self, root: dict[str, Any]) -> None:
        """Start ``exchange serve`` on a free loopback port and wait until it is healthy."""
        self.n.step("The relay", "starts on this machine (embedded SQLite database)")
        log_key = self.relay_log_key(root)
        port = _free_port()
        relay_dir = self.work / "relay"
        env = dict(self.env)
        env.update(
            {
                "EXCHANGE_ROOT_PUBLIC_KEY": root["public_key"],
                "EXCHANGE_DATABASE_URL": f"sqlite+aiosqlite:///{relay_dir / 'relay.db'}",
                "EXCHANGE_HOST": "127.0.0.1",
                "EXCHANGE_PORT": str(port),
                "EXCHANGE_LOG_FORMAT": "text",
                "EXCHANGE_RELAY_ID": RELAY_ID,
                "EXCHANGE_LOG_KEY_FILE": str(log_key),
                "EXCHANGE_LOG_KEY_PASSPHRASE": self.env[LOG_PASSPHRASE_VAR],
            }
        )
        log = (relay_dir / "relay.log").open("wb")
        self.relay_proc = subprocess.Popen(
            [sys.executable, "-m", "exchange", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.relay_url = f"http://127.0.0.1:{port}"
        _wait_healthy(self.relay_url, self.relay_proc, time.monotonic() + 30)
        self.n.say(
            f"exchange serve is answering at {self.relay_url} (process "
            f"{self.relay_proc.pid}). It stores and forwards sealed envelopes; it holds "
            "no key that can open them."
        )

    def certify_agencies(self, root: dict[str, Any]) -> None:
        """Each agency makes its keys; the administrator certifies them; each publishes."""
        self.n.step(WHO["admin"], "certifies four agencies")
        admin = self.work / "admin"
        for key, spec in AGENCIES.items():
            name, role, phone = spec["contact"]
            self.agency(
                key,
                "init",
                "--agency-id",
                spec["agency_id"],
                "--name",
                spec["name"],
                "--org-type",
                spec["org_type"],
                "--mailbox",
                spec["mailbox"],
                "--role",
                spec["role"],
                "--root-key",
                root["public_key"],
                "--contact-name",
                name,
                "--contact-role",
                role,
                "--contact-phone",
                phone,
            )
            request = self.work / key / "certificate-request.json"
            cert_path = admin / f"{key}-certificate.json"
            issued = self.admin(
                "cert",
                "issue",
                "--root-key",
                str(admin / "root.key"),
                "--passphrase-env",
                ROOT_PASSPHRASE_VAR,
                "--agency-id",
                spec["agency_id"],
                "--name",
                spec["name"],
                "--org-type",
                spec["org_type"],
                "--mailbox",
                spec["mailbox"],
                "--role",
                spec["role"],
                "--public-keys",
                str(request),
                "--out",
                str(cert_path),
            )
            requested = json.loads(request.read_text())
            _check(
                issued["fingerprint"] == requested["fingerprint"],
                f"the {key} certificate is not for the keys {key} generated",
            )
            installed = self.agency(
                key, "--json", "install-certificate", str(cert_path), "--publish"
            ).json()
            _check(installed["agency_id"] == spec["agency_id"], "certificate not installed")
            self.n.say(
                f"{spec['name']} ({spec['agency_id']}, {spec['org_type']}, mailbox "
                f"'{spec['mailbox']}'{', role auditor' if spec['role'] == 'auditor' else ''}): "
                f"generated its own keys (fingerprint {requested['fingerprint']}), got them "
                "certified by the root, and published the certificate."
            )

    def school_checks_directory(self) -> None:
        """The school fetches and verifies the directory."""
        self.n.step(WHO["school"], "looks up the front door in the directory")
        data = self.agency("school", "--json", "directory").json()
        ids = {a["agency_id"]: a for a in data["agencies"] if a["role"] != "relay"}
        _check(
            set(ids) == {s["agency_id"] for s in AGENCIES.values()},
            "the directory does not list the four agencies",
        )
        _check(
            any(a["role"] == "relay" for a in data["agencies"]),
            "the directory does not hold the relay's log certificate",
        )
        mash = ids["northshire-mash"]
        self.n.say(
            f"Every certificate checked against the pinned root. The front door is "
            f"{mash['name']}, mailbox {', '.join(mash['mailboxes'])}, key {mash['fingerprint']}."
        )

    def _forms(self) -> tuple[Path, Path]:
        forms = self.work / "forms"
        forms.mkdir(exist_ok=True)
        good = forms / "maya-referral.yaml"
        bad = forms / "referral-wrong-basis.yaml"
        shutil.copy(TEMPLATES / "referral.yaml", good)
        shutil.copy(TEMPLATES / "referral-wrong-basis.yaml", bad)
        return good, bad

    def wrong_basis_refused(self) -> None:
        """Scenario 6: the wrong basis is refused by the school's own check."""
        self.n.step(WHO["school"], "first tries a template that says 'legitimate interests'")
        _, bad = self._forms()
        outcome = self.agency("school", "refer", str(bad), expect=1)
        lines = outcome.error_lines()
        _check(any("L002" in line for line in lines), "the wrong basis was not refused")
        self.n.say("The school's own policy check refused it before anything was encrypted:")
        for line in lines:
            self.n.say(line.strip(), indent=4)
        outbox = self.agency("school", "--json", "outbox", "list").json()
        _check(outbox["queued"] == [], "something was queued")
        self.n.say("Nothing was sealed, stored or sent.")

    def relay_refuses_forced_basis(self) -> None:
        """The same basis forced past the local check is refused by the relay."""
        self.n.step(WHO["school"] + " (a modified client)", "forces the same basis through")
        _, bad = self._forms()
        outcome = self.workers["school"].run(
            [],
            op={
                "op": "force-refer",
                "home": str(self.work / "school"),
                "form": str(bad),
                "relay": self.relay_url,
            },
        )
        result: dict[str, Any] = (
            outcome.json() if outcome.code == 0 else {"error": outcome.error_lines()}
        )
        problem: dict[str, Any] = result.get("problem") or {}
        rules = {f.get("rule") for f in problem.get("findings", [])}
        _check(
            result.get("accepted") is False and problem.get("status") == 422 and "L002" in rules,
            f"the relay did not refuse the unlawful basis ({result})",
        )
        self.n.say(
            "With the local check switched off, the envelope was sealed and signed and sent. "
            f"The relay re-ran the same rules on the header codes and refused it: "
            f"HTTP {problem['status']} {problem['code']}, rule(s) {', '.join(sorted(rules))}."
        )

    def school_refers(self) -> str:
        """The DSL refers Maya; return the thread id."""
        self.n.step(WHO["school"], "refers Maya, 7, to the front door")
        good, _ = self._forms()
        sent = self.agency("school", "--json", "refer", str(good)).json()
        _check(
            sent["verdict"]["decision"] in {"accept", "warn"} and not sent["queued"],
            "the referral was not accepted",
        )
        _check(
            sent["receipt"]["message_id"] == sent["message_id"],
            "the relay's receipt does not name the referral",
        )
        self.n.say(
            "Maya told her teacher a bruise came from her stepfather 'when he was angry'. "
            "The referral (the disclosure in her words, the observed injury, attendance, "
            "household) declares public task (Education Act 2002 s.175), Art 9(2)(g) with "
            "DPA 2018 Sch 1 para 18 for the health data, and para 36 for the allegation. The "
            f"policy check said '{sent['verdict']['decision']}'; the referral was encrypted "
            "for the front door, its justification sealed to the auditor, the header signed."
        )
        self.n.relay_saw(sent)
        log = sent["receipt"].get("log") or {}
        _check(
            "tree_head" in log and "inclusion_proof" in log,
            "the relay's receipt carries no inclusion proof in a signed tree head",
        )
        self.n.say(
            f"Accepted by the relay as event {sent['receipt']['sequence']} (thread "
            f"{sent['thread_id']}). Its receipt puts the header at leaf {log['leaf_index']} of "
            "the relay's transparency log, with an inclusion proof against a tree head signed "
            "by the relay's certified log key: the school checked both, and keeps the tree "
            "head to check that every later one extends it."
        )
        return str(sent["thread_id"])

    def front_door_opens(self, thread: str) -> None:
        """The front door collects, verifies, opens and receipts the referral."""
        self.n.step(WHO["mash"], "collects and opens the referral")
        items = self.agency("mash", "--json", "inbox").json()["items"]
        _check(
            [(i["kind"], i["message_id"]) for i in items] == [("REFERRAL", thread)],
            "the front door did not receive the referral",
        )
        item = items[0]
        _check(item["receipted"] is True, "no delivery receipt was sent")
        shown = self.agency("mash", "--json", "show", thread).json()
        body = shown["body"]
        _check(body["child"]["given_name"] == "Maya", "the referral did not decrypt")
        self.n.say(
            "Signature and certificate verified, nothing altered or re-addressed, decrypted, "
            f"lawful basis re-checked ('{item['verdict']['decision']}'), stored encrypted on "
            "the front door's machine, and a signed delivery receipt sent to the relay."
        )
        self.n.say(
            f"The social worker reads: {body['child']['given_name']}, concern "
            f"{', '.join(body['concern_categories'])}, immediate risk "
            f"{'yes' if body['immediate_risk'] else 'no'}, child now: "
            f"{body['child_location_now']}."
        )

    def _thread(self, key: str, thread: str) -> dict[str, Any]:
        views = self.agency(key, "--json", "threads").json()["threads"]
        for view in views:
            if view["thread_id"] == thread:
                return dict(view)
        raise StepFailed(f"{key} does not know thread {thread}")

    def front_door_acknowledges(self, thread: str) -> None:
        """The front door acknowledges within the working-day deadline."""
        self.n.step(WHO["mash"], "acknowledges the referral within the deadline")
        before = self._thread("mash", thread)
        due = {d["code"]: d for d in before["deadlines"]}
        _check("T_ACK_REFERRAL" in due, "the relay set no acknowledgement deadline")
        self.n.say(
            f"The relay's clock: acknowledge by {due['T_ACK_REFERRAL']['due']} "
            "(1 working day, Working Together 2023)."
        )
        self.agency("mash", "--json", "ack", thread, "--reference", "NB-FD-2026-118842")
        after = {d["code"]: d for d in self._thread("mash", thread)["deadlines"]}
        ack = after["T_ACK_REFERRAL"]
        _check(
            ack["met_at"] is not None and not ack["met_late"] and not ack["overdue"],
            "the acknowledgement deadline was not met",
        )
        self.n.say(
            f"Acknowledged at {ack['met_at']}, within the deadline; thread state "
            f"{self._thread('mash', thread)['state']}."
        )

    def front_door_asks_police(self, thread: str) -> str:
        """The front door's s.47(9) request to the police; return its id."""
        self.n.step(WHO["mash"], "asks the police what they hold (Children Act 1989 s.47(9))")
        sent = self.agency(
            "mash",
            "--json",
            "rfi",
            "--to",
            "northshire-police-ppu/public-protection",
            "--about",
            thread,
            "--request",
            "Any police involvement with the household and any record of "
            "violence by the stepfather.",
            "--why",
            "A child disclosed an injury by her stepfather; we are deciding today "
            "whether to start s.47 enquiries.",
            "--enquiry-ref",
            "NB-FD-2026-118842",
            "--due-hours",
            "4",
        ).json()
        _check(
            "CA1989_S47_9" in (sent["relay_sees"]["basis"].get("gateways") or []),
            "the request does not cite s.47(9)",
        )
        self.n.say(
            "Only the child's identifying details were copied from the referral. "
            "The request opens a thread of its own."
        )
        self.n.relay_saw(sent)
        return str(sent["message_id"])

    def police_answer(self, request: str) -> None:
        """The police answer the request; the front door collects the answer."""
        self.n.step(WHO["police"], "receive the request and answer it")
        items = self.agency("police", "--json", "inbox").json()["items"]
        _check([i["message_id"] for i in items] == [request], "the police got no request")
        sent = self.agency(
            "police",
            "--json",
            "respond",
            request,
            "--provide",
            "One domestic incident at the address in August 2026 (verbal argument, no "
            "offences). The stepfather has a 2019 caution for assault on a former partner.",
            "--criminal-offence-data",
        ).json()
        self.n.say(
            "The answer includes criminal offence data, so its basis adds DPA 2018 "
            "Sch 1 para 36; checked before sealing."
        )
        self.n.relay_saw(sent)
        back = self.agency("mash", "--json", "inbox").json()["items"]
        _check(
            [i["kind"] for i in back] == ["RESPONSE_TO_RFI"],
            "the front door did not receive the answer",
        )
        self.n.say("The front door has the police answer (opened, verified, receipted).")

    def front_door_decides(self, thread: str) -> None:
        """The front door sends its decision and next steps to the school."""
        self.n.step(WHO["mash"], "decides STRATEGY_S47 and tells the school what to do")
        sent = self.agency(
            "mash",
            "--json",
            "decide",
            thread,
            "--outcome",
            "STRATEGY_S47",
            "--summary",
            "A strategy discussion with police and health is being held today "
            "and s.47 enquiries have started. Grace Adeyemi is the allocated social worker.",
            "--next-steps",
            "If Maya's stepfather arrives to collect her, keep Maya in school "
            "and call Grace Adeyemi straight away (or 999 if anyone is in danger). Do not "
            "discuss the referral with the family. Record any further disclosure in Maya's "
            "own words.",
            "--worker-name",
            "Grace Adeyemi",
            "--worker-role",
            "Social worker, Assessment Team",
            "--worker-phone",
            "01632 960210",
        ).json()
        self.n.relay_saw(sent)
        self.n.say(
            "The outcome code and the next steps are inside the encrypted body; the "
            "relay only sees that a DECISION_FEEDBACK was sent on the thread."
        )

    def teacher_sees_outcome(self, thread: str) -> None:
        """The school sees the acknowledgement, the outcome and what to do."""
        self.n.step(WHO["school"], "sees what happened to the referral")
        items = self.agency("school", "--json", "inbox").json()["items"]
        _check(
            [i["kind"] for i in items] == ["ACKNOWLEDGEMENT", "DECISION_FEEDBACK"],
            "the school did not receive the acknowledgement and the decision",
        )
        view = self._thread("school", thread)
        outcome = view["outcome"]
        _check(
            view["state"] == "DECISION_GIVEN" and outcome.get("outcome_code") == "STRATEGY_S47",
            "the thread does not show the decision",
        )
        _check(not view["overdue"], "the thread is overdue")
        self.n.say(f"Thread state: {view['state']} (the relay's record; nothing overdue).")
        for deadline in view["deadlines"]:
            status = "met" if deadline["met_at"] else "open"
            self.n.say(f"{deadline['code']}: due {deadline['due']}, {status}", indent=4)
        self.n.say(f"Acknowledged, their reference {outcome.get('their_reference')}.")
        self.n.say(f"Outcome: {outcome['outcome_code']}. {outcome['summary_for_referrer']}")
        self.n.say(f"What to do next: {outcome['referrer_next_steps']}")
        worker = outcome.get("allocated_worker") or {}
        self.n.say(f"Allocated worker: {worker.get('name')}, {worker.get('phone')}.")

    def school_verifies_receipts(self) -> None:
        """The school verifies the relay's and the front door's receipts."""
        self.n.step(WHO["school"], "checks the receipts for what it sent")
        checks = self.agency("school", "--json", "receipts", "verify").json()["messages"]
        refused = [m for m in checks if m["refused"]]
        messages = [m for m in checks if not m["refused"]]
        _check(len(refused) == 1, "the relay's refusal of the forced basis is not on record")
        _check(
            len(messages) == 1
            and messages[0]["submit_receipt_ok"]
            and messages[0]["delivered_to"] == ["northshire-mash"],
            "the school's receipts do not verify",
        )
        self.n.say(
            "The relay's receipt names exactly the header the school signed, its log entry is "
            "still proved in the relay's newest signed tree head (which extends the one the "
            "school kept), and the front door's signed delivery receipt verifies against its "
            "certificate. (The forced referral of step 6 is on record as refused, never "
            "delivered.)"
        )

    def auditor_checks(self) -> None:
        """The auditor verifies the log, every share's basis and justification, and timeliness."""
        self.n.step(WHO["auditor"], "verifies the log and every share without reading content")
        reports = self.work / "audit"
        reports.mkdir()
        data = self.agency(
            "auditor",
            "--json",
            "audit",
            "verify",
            "--report-json",
            str(reports / "report.json"),
            "--report-html",
            str(reports / "report.html"),
        ).json()
        entries = data["entries"]
        kinds = [e["kind"] for e in entries]
        _check(
            kinds
            == [
                "REFERRAL",
                "ACKNOWLEDGEMENT",
                "REQUEST_FOR_INFORMATION",
                "RESPONSE_TO_RFI",
                "DECISION_FEEDBACK",
            ],
            f"the log does not hold the five shares (found {kinds})",
        )
        log = data["log"]
        _check(data["ok"] and not data["failures"], f"the audit failed: {data['failures']}")
        _check(log["root_verified"], "the auditor could not rebuild the signed tree heads")
        _check(
            all(e["signature_ok"] and e["justification_read"] for e in entries),
            "the auditor could not verify every signature and read every justification",
        )
        self.n.say(
            f"The relay's log: {log['tree_heads_verified']} signed tree heads verified against "
            f"the relay's certified log key, {log['consistency_proofs_checked']} consistency "
            f"proofs checked, and the tree rebuilt from its {log['leaves']} leaves "
            f"({', '.join(f'{n} {t}' for t, n in log['by_type'].items())}) reproduces every "
            "signed root: nothing was removed, reordered or rewritten."
        )
        for e in entries:
            basis = e["basis_codes"]
            codes = " ".join(
                "+".join(v) if isinstance(v, list) else str(v)
                for k in ("art6", "art9_condition", "sch1_condition", "art10_sch1_condition")
                if (v := basis.get(k))
            )
            self.n.say(
                f"#{e['leaf_index']} {e['kind']} {e['sender']} -> {', '.join(e['recipients'])}: "
                f"signature verified (certificate valid when sent); basis {codes}; rules over "
                f"the codes: {e['codes_verdict']}; justification read, present and matching "
                f"the header's commitment ({len(e.get('justification_fields', []))} field(s)); "
                f"rules with it: {e['full_verdict']}",
                indent=4,
            )
        rejected = data["rejections"]
        self.n.say(
            f"The refusal of step 6 is in the log too: {rejected['total']} submission(s) "
            f"refused, by rule {', '.join(f'{r} ({n})' for r, n in rejected['by_rule'].items())}."
        )
        timeliness = data["timeliness"]
        for thread in timeliness["thread_list"]:
            days = thread["working_days"]
            if thread["type"] != "REFERRAL":
                self.n.say(
                    f"{thread['opened_by']} to {thread['mailbox']}: {thread['state']} (only the "
                    "delivery clock runs on a request; its due time is inside the encrypted "
                    "body).",
                    indent=4,
                )
                continue
            self.n.say(
                f"{thread['opened_by']} to {thread['mailbox']}: {thread['state']}; acknowledged "
                f"after {days['acknowledgement']} working day(s), decided after "
                f"{days['decision']}, feedback {days['feedback']} working day(s) after the "
                f"referral (limits {timeliness['limits_working_days']['acknowledgement']}/"
                f"{timeliness['limits_working_days']['decision']}/"
                f"{timeliness['limits_working_days']['feedback']}); "
                f"{'OVERDUE' if thread['overdue'] else 'nothing overdue'}.",
                indent=4,
            )
        _check(timeliness["overdue"] == 0, "a thread is overdue")
        bundle = reports / "period.bundle.json"
        self.agency("auditor", "--json", "audit", "export", "--out", str(bundle))
        offline = self.agency(
            "auditor", "--json", "audit", "verify", "--bundle", str(bundle)
        ).json()
        _check(
            offline["ok"] and offline["messages"]["justifications_read"] == len(entries),
            "the exported bundle does not verify offline",
        )
        self.n.say(
            f"All {len(entries)} justifications sealed to the auditor were read and checked, "
            "and no message body was ever fetched. The reports are in "
            f"{reports}/report.json and report.html; the signed bundle {bundle.name} verifies "
            "again offline, against the partnership root alone."
        )


def main(argv: Sequence[str] | None = None, *, out: IO[str] | None = None) -> int:
    """Run the demo (or, with ``--worker TOOL``, one party's command loop)."""
    parser = argparse.ArgumentParser(
        prog="python -m agency_client.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--worker", choices=("agency", "exchange"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--work",
        type=Path,
        default=WORK,
        help="work directory, recreated on each run (default ./demo-run)",
    )
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    stream = out or sys.stdout
    narrator = Narrator(stream)
    work: Path = args.work
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    narrator.title("Safeguarding exchange demo - scenario 1: Maya, 7, Oakfield Primary (fictional)")
    started = time.monotonic()
    demo = Demo(work.resolve(), narrator)
    try:
        demo.run()
    except StepFailed as exc:
        print(file=stream)
        print(f"DEMO FAILED at step {narrator.number}: {exc}", file=stream)
        print(f"Logs are in {work}/logs and {work}/relay/relay.log", file=stream)
        return 1
    except KeyboardInterrupt:
        print("\nDemo interrupted.", file=stream)
        return 130
    finally:
        demo.close()
    print(file=stream)
    narrator.title(
        f"All {narrator.number} steps succeeded in {time.monotonic() - started:.1f} s. "
        f"Everything is in {work}/."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
