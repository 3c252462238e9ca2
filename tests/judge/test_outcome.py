"""The conform rule (judge/outcome.decide) and what a run with nothing judged exits with."""

from __future__ import annotations

import pytest

from adamconf.adapters.base import Variant
from adamconf.conformance.cli import main
from adamconf.conformance.cli.common import EXIT_NO_VERDICT
from adamconf.conformance.judge.outcome import (
    CaseResult,
    Conformance,
    RunResult,
    Status,
    ValidationResult,
    decide,
)

V = Variant("x", "plain", "cpu", "float32")


def _results(*statuses):
    return [CaseResult(f"c{i}", V, s) for i, s in enumerate(statuses)]


@pytest.mark.parametrize("statuses, expected, judged", [
    ((), Conformance.NO_VERDICT, 0),                                   # no case
    (("unsupported",) * 3, Conformance.NO_VERDICT, 0),                 # all unsupported
    (("inconclusive",) * 3, Conformance.NO_VERDICT, 0),                # all inconclusive
    (("inconclusive", "unsupported"), Conformance.NO_VERDICT, 0),      # mixed, none judged
    (("pass", "unsupported", "inconclusive"), Conformance.CONFORMS, 1),
    (("pass", "fail"), Conformance.DOES_NOT_CONFORM, 2),
    (("pass", "error"), Conformance.DOES_NOT_CONFORM, 1),
    (("unsupported", "error"), Conformance.DOES_NOT_CONFORM, 0),
])
def test_decide(statuses, expected, judged):
    decision = decide(V.id, _results(*statuses))
    assert decision.conformance is expected
    assert decision.judged == judged and decision.selected == len(statuses)


def test_min_judged_turns_low_coverage_into_a_failure():
    results = _results("pass", "unsupported", "unsupported", "unsupported")
    assert decide(V.id, results, min_judged=0.25).conformance is Conformance.CONFORMS
    low = decide(V.id, results, min_judged=0.5)
    assert low.conformance is Conformance.DOES_NOT_CONFORM and "1 of 4" in low.reason


def test_a_status_typo_is_refused():
    with pytest.raises(ValueError):
        CaseResult("c", V, "passed")
    assert CaseResult("c", V, "pass").status is Status.PASS


def test_run_precedence_and_validation():
    run = RunResult("x", None, _results("pass"), variants_selected=[V])
    assert run.conformance is Conformance.CONFORMS
    other = Variant("x", "plain", "cpu", "float16")  # selected, but no case targets it
    run.variants_selected.append(other)
    assert run.conformance is Conformance.NO_VERDICT
    assert run.no_verdict_variants() == [other.id]
    run.validation.append(ValidationResult("plain", "cpu", "lr", "-1", None, False))
    assert run.conformance is Conformance.DOES_NOT_CONFORM


def test_a_backend_that_supports_nothing_has_no_verdict(capsys):
    code = main(["run", "--quiet", "--backend", "example_backends:NothingSupportedBackend",
                 "-k", "t1/"])
    out, err = capsys.readouterr()
    assert code == EXIT_NO_VERDICT, out
    assert "CONFORMS" not in out and "NO VERDICT" in out
    assert "none of its" in out and "unsupported" in out
    assert "no verdict for refuses-everything-example plain/cpu/float64" in err


def test_a_backend_judged_on_a_few_cases_says_how_many(capsys):
    code = main(["run", "--quiet", "--backend", "example_backends:FewSupportedBackend",
                 "-k", "t1/", "-k", "short/"])
    out, _ = capsys.readouterr()
    assert code == 0, out
    line = next(x for x in out.splitlines() if "plain/cpu/float64" in x)
    judged = line.split()[-2]
    passed, selected = (int(n) for n in judged.split("/"))
    assert 0 < passed < selected
    code = main(["run", "--quiet", "--backend", "example_backends:FewSupportedBackend",
                 "-k", "t1/", "-k", "short/", "--min-judged", "0.9"])
    assert code == 1


def test_python_api_check_in_process():
    from example_backends import EpsHatBackend

    from adamconf import check

    result = check(EpsHatBackend(), cases="t1/", validate=False)
    assert not result.conforms
    assert result.verdict == {"plain/cpu/float64": "does not conform"}
    assert result.failures and result.failures[0].dialects
    assert "eps-hat" in result.failures[0].dialects
    assert result.to_json()["runs"][0]["conformance"] == "does not conform"
