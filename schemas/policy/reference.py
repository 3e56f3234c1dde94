"""Render the rule set as the Markdown reference in ``docs/policy.md``.

``python -m schemas.policy.reference > docs/policy.md`` regenerates it; a test
fails when the committed page and the code disagree, so the page can be trusted.
"""

from __future__ import annotations

from schemas.policy import POLICY_VERSION, RULES, SKIPPED_MODEL_RULES

__all__ = ["render"]

_PREAMBLE = """# The lawful-basis rules

Generated from the policy engine (`schemas/policy/`) by `python -m schemas.policy.reference`;
do not edit by hand. Rule set version **{version}**. Every message header records the version it
was checked under, and the auditor re-runs the same engine over the log.

The rules encode the partnership's research draft (`policy_model.json`, with the law in
`policy.md`). Rule ids follow the draft where a rule there applies (`L` law, `P` platform
policy derived from a legal duty, `G` statutory guidance, `A` advice); `X` rules are this
project's additions, chiefly that unknown codes and malformed fields are findings rather than
crashes.

Levels: `REJECT_LAW` and `REJECT_POLICY` refuse the message (a deployment may downgrade
`REJECT_POLICY` to a warning, never `REJECT_LAW`); `WARN_GUIDANCE` and `WARN_ADVICE` are shown to
the practitioner and recorded, but do not block. Rules marked *needs text* read the free-text
justification, which only the sender, the recipients and the auditor can read: the relay
evaluates the header codes alone and skips them. Rules marked *needs content* read facts from the
decrypted body and run only in the sender's and recipient's clients.

## What was checked against sources
- Public-authority bar on Art 6(1)(ea) and (f) (L002): UK GDPR Art 6(1) final sentence as amended
  by the Data (Use and Access) Act 2025 s.70, in force 5 Feb 2026 (SI 2026/82); DPA 2018 s.7.
- Competent authorities for the Sch 1 para 10 APD exception (L015): DPA 2018 s.30(1)(a)-(b) and
  Sch 7; police, probation and youth offending teams (the last at medium confidence).
- Para 18 structure (L013, L014): DPA 2018 Sch 1 para 18(1)-(3) as summarised in the draft §1.4.
- Timescales (acknowledgement, decision, feedback within one working day) are not single-message
  rules: the relay's thread deadlines enforce them (`schemas/deadlines.py`).
- Open points carried from the draft: the commencement of Children Act 2004 s.16LA (switch
  `s16la_in_force`, off by default) and consistent-identifier regulations (switch
  `consistent_identifier_regs_in_force`, off by default).
"""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\\\|")


def render() -> str:
    """The whole reference page as Markdown."""
    lines = [_PREAMBLE.format(version=POLICY_VERSION), "## Rules", ""]
    lines.append("| rule | level | what it requires | cite | reads |")
    lines.append("| --- | --- | --- | --- | --- |")
    for rule in sorted(RULES, key=lambda r: r.rule):
        reads = ", ".join(
            name
            for name, flag in (
                ("needs text", rule.reads_justification),
                ("needs content", rule.reads_facts),
            )
            if flag
        )
        lines.append(
            f"| {rule.rule} | {rule.level} | {_cell(rule.message)} | "
            f"{_cell('; '.join(rule.cite))} | {reads} |"
        )
    lines += ["", "## Rules of the draft not evaluated per message", ""]
    for rule_id, why in sorted(SKIPPED_MODEL_RULES.items()):
        lines.append(f"- **{rule_id}**: {why}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
