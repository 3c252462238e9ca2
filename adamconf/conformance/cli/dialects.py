"""``adamconf dialects``: the model of Adam implementations — its switches and their
settings, each with its formula and where it is seen — and the named points known in
real code."""

from __future__ import annotations

from adamconf.conformance.cli.common import EXIT_OK


def add_parser(sub) -> None:
    sub.add_parser(
        "dialects", help="the switches of the model of Adam implementations the suite names",
        description="Every switch of the model, its settings (the documented one first) with "
                    "their labels and formulas, and the combinations seen in real code. A "
                    "dialect's name is its labels, sorted, joined by '+'.")


def execute(args) -> int:
    from adamconf.reference.dialects import DIALECTS, SWITCHES

    for switch in SWITCHES:
        kind = "semantic" if switch.semantic else "precision"
        print(f"{switch.title} ({kind})")
        for setting in switch.settings:
            label = setting.label or "(documented)"
            print(f"    {label:<22} {setting.formula}\n    {'':<22} seen in: "
                  f"{setting.known_in}")
    print("combinations seen in real code")
    for d in DIALECTS.values():
        if d.size > 1:
            print(f"    {d.name:<34} {d.known_in}")
    return EXIT_OK
