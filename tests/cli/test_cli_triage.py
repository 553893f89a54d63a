"""`disputes intake evaluate`: the desk's model on its frozen split, with the confusion matrix."""

from __future__ import annotations

from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def test_intake_evaluate_prints_accuracy_macro_f1_per_language_and_the_confusion_matrix() -> None:
    result = runner.invoke(app, ["intake", "evaluate"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:3] == ["all", "texts", "560"] and "macro-F1" in line for line in lines)
    assert any(line.split()[:3] == ["zh", "texts", "280"] for line in lines)
    assert any(line.split()[:3] == ["en", "texts", "280"] for line in lines)
    assert "| label \\ predicted |" in result.output
    assert "keyword rules alone" in result.output
